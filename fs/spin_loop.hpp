#pragma once
// A session loop whose idle worker polls /dev/fuse for a short while before it sleeps
// (-o spin_us=N). On a VM without halt-polling, waking a thread that sleeps on another vCPU
// costs tens of microseconds, paid by every request that arrives while the daemon sleeps:
// a reader issuing requests back to back (a walk, a loop over header.json files) finds the
// spinning worker awake instead. At most one worker spins at a time, yielding the CPU on
// every turn, so a reader sharing its vCPU still runs. libfuse 3.14's own loops cannot spin.

#include <fuse_lowlevel.h>

#include <chrono>

namespace payloadfs {

// Serves requests on `threads` workers until the session ends (unmount or signal).
// Returns 0, or a negative errno when reading the device failed.
int run_spin_loop(fuse_session* session, unsigned threads, std::chrono::microseconds spin);

}  // namespace payloadfs
