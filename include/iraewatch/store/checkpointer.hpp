#pragma once
// Checkpoints the WAL from its own connection and thread, so that the writer's commits never
// pay for it (a checkpoint inside a commit held acknowledgements for up to tens of ms). Each
// checkpoint still slows the commits that overlap it (its writes and fsync share the disk), so
// with a WAL size counter it checkpoints only once the WAL holds `min_frames` frames, or
// `max_wait` after the last checkpoint: rarer and larger, and each hot page copied once. Under a
// steady load it leaves the last few frames to the writer (WalGauge), so that the WAL restarts
// from its beginning instead of growing for as long as the load lasts.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "iraewatch/store/store.hpp"

namespace iraewatch::store {

// How many frames at most the writer is asked to copy itself (2 MB; at 5,000 records/s it is
// usually a few dozen), and how many passes a round makes to get there.
inline constexpr std::int64_t kWriterTailFrames = 512;
inline constexpr int kMaxCheckpointPasses = 3;

// One round of the checkpointer, on its own connection `store`, for the writer whose gauge is
// `wal`: PASSIVE passes, then, when the writer committed while they ran and at most
// kWriterTailFrames frames are left, a request that the writer copy those (WalGauge).
void checkpoint_round(Store& store, WalGauge& wal);

class Checkpointer {
 public:
  // `wal`: the writer's gauge (StoreOptions::wal); null checkpoints every tick.
  Checkpointer(std::unique_ptr<Store> store, std::chrono::milliseconds every, std::shared_ptr<WalGauge> wal = nullptr,
               std::int64_t min_frames = 4000, std::chrono::milliseconds max_wait = std::chrono::seconds(30));
  ~Checkpointer();  // runs a last checkpoint and ends the thread
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

 private:
  void run();
  void checkpoint_once();

  std::unique_ptr<Store> store_;
  std::chrono::milliseconds every_;
  std::shared_ptr<WalGauge> wal_;
  std::int64_t min_frames_;
  std::chrono::milliseconds max_wait_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace iraewatch::store
