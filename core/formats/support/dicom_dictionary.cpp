#include "core/formats/support/dicom_dictionary.hpp"

#include <algorithm>
#include <array>

namespace payloadfs::formats::dicom {
namespace {

// Sorted by tag (checked by a static_assert below).
constexpr std::array<DictionaryEntry, 92> kEntries = {{
    {0x00020000, "UL", "FileMetaInformationGroupLength"},
    {0x00020001, "OB", "FileMetaInformationVersion"},
    {0x00020002, "UI", "MediaStorageSOPClassUID"},
    {0x00020003, "UI", "MediaStorageSOPInstanceUID"},
    {0x00020010, "UI", "TransferSyntaxUID"},
    {0x00020012, "UI", "ImplementationClassUID"},
    {0x00020013, "SH", "ImplementationVersionName"},
    {0x00020016, "AE", "SourceApplicationEntityTitle"},
    {0x00080005, "CS", "SpecificCharacterSet"},
    {0x00080008, "CS", "ImageType"},
    {0x00080012, "DA", "InstanceCreationDate"},
    {0x00080013, "TM", "InstanceCreationTime"},
    {0x00080016, "UI", "SOPClassUID"},
    {0x00080018, "UI", "SOPInstanceUID"},
    {0x00080020, "DA", "StudyDate"},
    {0x00080021, "DA", "SeriesDate"},
    {0x00080022, "DA", "AcquisitionDate"},
    {0x00080023, "DA", "ContentDate"},
    {0x00080030, "TM", "StudyTime"},
    {0x00080031, "TM", "SeriesTime"},
    {0x00080032, "TM", "AcquisitionTime"},
    {0x00080033, "TM", "ContentTime"},
    {0x00080050, "SH", "AccessionNumber"},
    {0x00080060, "CS", "Modality"},
    {0x00080064, "CS", "ConversionType"},
    {0x00080070, "LO", "Manufacturer"},
    {0x00080080, "LO", "InstitutionName"},
    {0x00080090, "PN", "ReferringPhysicianName"},
    {0x00080100, "SH", "CodeValue"},
    {0x00080102, "SH", "CodingSchemeDesignator"},
    {0x00080104, "LO", "CodeMeaning"},
    {0x00081030, "LO", "StudyDescription"},
    {0x00081032, "SQ", "ProcedureCodeSequence"},
    {0x0008103E, "LO", "SeriesDescription"},
    {0x00081090, "LO", "ManufacturerModelName"},
    {0x00081140, "SQ", "ReferencedImageSequence"},
    {0x00081150, "UI", "ReferencedSOPClassUID"},
    {0x00081155, "UI", "ReferencedSOPInstanceUID"},
    {0x00082112, "SQ", "SourceImageSequence"},
    {0x00100010, "PN", "PatientName"},
    {0x00100020, "LO", "PatientID"},
    {0x00100030, "DA", "PatientBirthDate"},
    {0x00100040, "CS", "PatientSex"},
    {0x00101010, "AS", "PatientAge"},
    {0x00101020, "DS", "PatientSize"},
    {0x00101030, "DS", "PatientWeight"},
    {0x00180015, "CS", "BodyPartExamined"},
    {0x00180050, "DS", "SliceThickness"},
    {0x00180060, "DS", "KVP"},
    {0x00180088, "DS", "SpacingBetweenSlices"},
    {0x00181020, "LO", "SoftwareVersions"},
    {0x00185100, "CS", "PatientPosition"},
    {0x0020000D, "UI", "StudyInstanceUID"},
    {0x0020000E, "UI", "SeriesInstanceUID"},
    {0x00200010, "SH", "StudyID"},
    {0x00200011, "IS", "SeriesNumber"},
    {0x00200012, "IS", "AcquisitionNumber"},
    {0x00200013, "IS", "InstanceNumber"},
    {0x00200020, "CS", "PatientOrientation"},
    {0x00200032, "DS", "ImagePositionPatient"},
    {0x00200037, "DS", "ImageOrientationPatient"},
    {0x00200052, "UI", "FrameOfReferenceUID"},
    {0x00201041, "DS", "SliceLocation"},
    {0x00280002, "US", "SamplesPerPixel"},
    {0x00280004, "CS", "PhotometricInterpretation"},
    {0x00280006, "US", "PlanarConfiguration"},
    {0x00280008, "IS", "NumberOfFrames"},
    {0x00280009, "AT", "FrameIncrementPointer"},
    {0x00280010, "US", "Rows"},
    {0x00280011, "US", "Columns"},
    {0x00280030, "DS", "PixelSpacing"},
    {0x00280034, "IS", "PixelAspectRatio"},
    {0x00280100, "US", "BitsAllocated"},
    {0x00280101, "US", "BitsStored"},
    {0x00280102, "US", "HighBit"},
    {0x00280103, "US", "PixelRepresentation"},
    {0x00281050, "DS", "WindowCenter"},
    {0x00281051, "DS", "WindowWidth"},
    {0x00281052, "DS", "RescaleIntercept"},
    {0x00281053, "DS", "RescaleSlope"},
    {0x00281054, "LO", "RescaleType"},
    {0x00282110, "CS", "LossyImageCompression"},
    {0x00320032, "DA", "StudyVerifiedDate"},
    {0x00400009, "SH", "ScheduledProcedureStepID"},
    {0x00400244, "DA", "PerformedProcedureStepStartDate"},
    {0x00400253, "SH", "PerformedProcedureStepID"},
    {0x00400260, "SQ", "PerformedProtocolCodeSequence"},
    {0x00400275, "SQ", "RequestAttributesSequence"},
    {0x00401001, "SH", "RequestedProcedureID"},
    {0x00540081, "US", "NumberOfSlices"},
    {0x00880140, "UI", "StorageMediaFileSetUID"},
    {0x7FE00010, "OW", "PixelData"},
}};

static_assert(std::is_sorted(kEntries.begin(), kEntries.end(),
                             [](const auto& a, const auto& b) { return a.tag < b.tag; }));

}  // namespace

std::optional<DictionaryEntry> lookup(uint32_t tag) {
  const auto it = std::lower_bound(kEntries.begin(), kEntries.end(), tag,
                                   [](const DictionaryEntry& e, uint32_t t) { return e.tag < t; });
  if (it == kEntries.end() || it->tag != tag) return std::nullopt;
  return *it;
}

}  // namespace payloadfs::formats::dicom
