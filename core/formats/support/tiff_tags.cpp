// Names of TIFF tags, GeoTIFF keys and compression schemes.

#include "core/formats/support/tiff_tags.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

namespace payloadfs::formats::tiff {
namespace {

template <typename Table>
std::string lookup(const Table& table, uint64_t key) {
  const auto it = std::find_if(std::begin(table), std::end(table),
                               [&](const auto& entry) { return entry.first == key; });
  return it != std::end(table) ? std::string(it->second) : std::to_string(key);
}

constexpr std::pair<uint16_t, const char*> kTags[] = {
    {254, "NewSubfileType"},
    {255, "SubfileType"},
    {256, "ImageWidth"},
    {257, "ImageLength"},
    {258, "BitsPerSample"},
    {259, "Compression"},
    {262, "PhotometricInterpretation"},
    {263, "Threshholding"},
    {266, "FillOrder"},
    {269, "DocumentName"},
    {270, "ImageDescription"},
    {271, "Make"},
    {272, "Model"},
    {273, "StripOffsets"},
    {274, "Orientation"},
    {277, "SamplesPerPixel"},
    {278, "RowsPerStrip"},
    {279, "StripByteCounts"},
    {280, "MinSampleValue"},
    {281, "MaxSampleValue"},
    {282, "XResolution"},
    {283, "YResolution"},
    {284, "PlanarConfiguration"},
    {285, "PageName"},
    {286, "XPosition"},
    {287, "YPosition"},
    {296, "ResolutionUnit"},
    {297, "PageNumber"},
    {301, "TransferFunction"},
    {305, "Software"},
    {306, "DateTime"},
    {315, "Artist"},
    {316, "HostComputer"},
    {317, "Predictor"},
    {318, "WhitePoint"},
    {319, "PrimaryChromaticities"},
    {320, "ColorMap"},
    {322, "TileWidth"},
    {323, "TileLength"},
    {324, "TileOffsets"},
    {325, "TileByteCounts"},
    {330, "SubIFDs"},
    {338, "ExtraSamples"},
    {339, "SampleFormat"},
    {340, "SMinSampleValue"},
    {341, "SMaxSampleValue"},
    {347, "JPEGTables"},
    {529, "YCbCrCoefficients"},
    {530, "YCbCrSubSampling"},
    {531, "YCbCrPositioning"},
    {532, "ReferenceBlackWhite"},
    {700, "XMP"},
    {32997, "ImageDepth"},
    {32998, "TileDepth"},
    {33432, "Copyright"},
    {33550, "ModelPixelScaleTag"},
    {33723, "IPTC"},
    {33922, "ModelTiepointTag"},
    {34264, "ModelTransformationTag"},
    {34377, "Photoshop"},
    {34665, "ExifTag"},
    {34675, "InterColorProfile"},
    {34735, "GeoKeyDirectoryTag"},
    {34736, "GeoDoubleParamsTag"},
    {34737, "GeoAsciiParamsTag"},
    {34853, "GPSTag"},
    {42112, "GDAL_METADATA"},
    {42113, "GDAL_NODATA"},
    {50838, "ImageJMetaDataByteCounts"},
    {50839, "ImageJMetaData"},
};

constexpr std::pair<uint16_t, const char*> kGeoKeys[] = {
    {1024, "GTModelTypeGeoKey"},
    {1025, "GTRasterTypeGeoKey"},
    {1026, "GTCitationGeoKey"},
    {2048, "GeographicTypeGeoKey"},
    {2049, "GeogCitationGeoKey"},
    {2050, "GeogGeodeticDatumGeoKey"},
    {2051, "GeogPrimeMeridianGeoKey"},
    {2052, "GeogLinearUnitsGeoKey"},
    {2053, "GeogLinearUnitSizeGeoKey"},
    {2054, "GeogAngularUnitsGeoKey"},
    {2055, "GeogAngularUnitSizeGeoKey"},
    {2056, "GeogEllipsoidGeoKey"},
    {2057, "GeogSemiMajorAxisGeoKey"},
    {2058, "GeogSemiMinorAxisGeoKey"},
    {2059, "GeogInvFlatteningGeoKey"},
    {2060, "GeogAzimuthUnitsGeoKey"},
    {2061, "GeogPrimeMeridianLongGeoKey"},
    {3072, "ProjectedCSTypeGeoKey"},
    {3073, "PCSCitationGeoKey"},
    {3074, "ProjectionGeoKey"},
    {3075, "ProjCoordTransGeoKey"},
    {3076, "ProjLinearUnitsGeoKey"},
    {3077, "ProjLinearUnitSizeGeoKey"},
    {3078, "ProjStdParallel1GeoKey"},
    {3079, "ProjStdParallel2GeoKey"},
    {3080, "ProjNatOriginLongGeoKey"},
    {3081, "ProjNatOriginLatGeoKey"},
    {3082, "ProjFalseEastingGeoKey"},
    {3083, "ProjFalseNorthingGeoKey"},
    {3088, "ProjCenterLongGeoKey"},
    {3089, "ProjCenterLatGeoKey"},
    {3092, "ProjScaleAtNatOriginGeoKey"},
    {4096, "VerticalCSTypeGeoKey"},
    {4097, "VerticalCitationGeoKey"},
    {4098, "VerticalDatumGeoKey"},
    {4099, "VerticalUnitsGeoKey"},
};

constexpr std::pair<uint64_t, const char*> kCompressions[] = {
    {1, "none"},         {2, "ccittrle"},    {3, "ccitt_t4"},     {4, "ccitt_t6"},
    {5, "lzw"},          {6, "ojpeg"},       {7, "jpeg"},         {8, "adobe_deflate"},
    {9, "jbig_bw"},      {10, "jbig_color"}, {32773, "packbits"}, {32946, "deflate"},
    {34712, "jpeg2000"}, {34887, "lerc"},    {34925, "lzma"},     {50000, "zstd"},
    {50001, "webp"},     {50002, "jpegxl"},
};

}  // namespace

uint64_t type_size(uint16_t type) {
  switch (type) {
    case kByte:
    case kAscii:
    case kSByte:
    case kUndefined:
      return 1;
    case kShort:
    case kSShort:
      return 2;
    case kLong:
    case kSLong:
    case kFloat:
    case kIfd:
      return 4;
    case kRational:
    case kSRational:
    case kDouble:
    case kLong8:
    case kSLong8:
    case kIfd8:
      return 8;
    default:
      return 0;
  }
}

std::string tag_name(uint16_t tag) {
  return lookup(kTags, tag);
}

std::string geokey_name(uint16_t key) {
  return lookup(kGeoKeys, key);
}

std::string compression_name(uint64_t compression) {
  return lookup(kCompressions, compression);
}

}  // namespace payloadfs::formats::tiff
