// libFuzzer target for the HTTP API's request decoders (src/server/api.h): arbitrary bytes
// go to every decoder; each must return a value or an InvalidArgument/ResourceExhausted
// status, never crash, hang or leak. Built and run by scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/api.h"

namespace {

void ExpectCleanFailure(const dynspec::Status& st) {
  using dynspec::StatusCode;
  if (st.ok()) return;
  if (st.code() != StatusCode::kInvalidArgument && st.code() != StatusCode::kResourceExhausted) {
    std::abort();  // a decoder must only ever blame the input
  }
  if (st.message().empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  dynspec::server::ApiLimits limits;
  limits.max_body_bytes = 1 << 16;
  limits.max_vector_values = 512;
  ExpectCleanFailure(dynspec::server::DecodeItemPut("item-1", body, limits).status());
  ExpectCleanFailure(dynspec::server::DecodeItemBatch(body, limits).status());
  ExpectCleanFailure(dynspec::server::DecodePredict(body, limits).status());
  ExpectCleanFailure(dynspec::server::DecodeRank(body, limits).status());
  ExpectCleanFailure(dynspec::server::DecodeFeedback(body, limits).status());
  ExpectCleanFailure(dynspec::server::DecodeBackup(body, limits).status());
  return 0;
}
