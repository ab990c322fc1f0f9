// libFuzzer target: DecodeCommand (contract §4) on arbitrary record values.
//
// Besides the sanitizers' findings, checks what the decoder promises: a
// decoded command names its peer; a refusal says why; a command pushed to
// the peer fits the size limit it was decoded against.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/command_decoder.h"

namespace {

void Check(bool condition, const char* what, absl::string_view input) {
  if (condition) return;
  std::fprintf(stderr, "command decoder invariant broken: %s\ninput: %.*s\n", what,
               static_cast<int>(input.size()), input.data());
  std::abort();
}

bool PushedToPeer(edge::CommandType type) {
  return type != edge::CommandType::kWebRtcReply && type != edge::CommandType::kDisconnect;
}

void DecodeWithLimit(absl::string_view value, size_t max_bytes) {
  edge::DecodeResult result = edge::DecodeCommand(value, max_bytes);
  if (!result.ok()) {
    Check(!result.error->detail.empty(), "a refusal without detail", value);
    return;
  }
  const edge::Command& command = result.command;
  Check(!command.peer_id.empty(), "a decoded command without peer_id", value);
  if (PushedToPeer(command.type)) {
    Check(command.message.ByteSizeLong() <= max_bytes, "a pushed command over the size limit",
          value);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view value(reinterpret_cast<const char*>(data), size);
  DecodeWithLimit(value, 4 * 1024 * 1024);  // GRPC_MAX_MESSAGE_BYTES' default
  DecodeWithLimit(value, 64);               // small enough to refuse most
  return 0;
}
