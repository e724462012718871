// Status and Result<T>: how every dynspec module reports expected failures.
//
// Contract: functions that can fail on input, missing ids, I/O or corrupt data return a
// Status (or a Result<T> that holds either a value or a non-OK Status). Exceptions never
// cross a module boundary; asserts are reserved for programmer errors. A failed call
// leaves the state it was asked to change untouched unless its comment says otherwise.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace dynspec {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // malformed, out-of-range, NaN/Inf, wrong dimension
  kNotFound,            // unknown item, provider, cluster or event id
  kAlreadyExists,       // duplicate id where a new one is required
  kFailedPrecondition,  // valid request that the current state cannot serve
  kCorruption,          // a file or record failed its checks
  kIoError,             // the operating system refused a read or write
  kResourceExhausted,   // a configured limit was reached
  kInternal,            // a bug or a dependency failed unexpectedly
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return Status(StatusCode::kInvalidArgument, std::move(msg));
  }
  static Status NotFound(std::string msg) { return Status(StatusCode::kNotFound, std::move(msg)); }
  static Status AlreadyExists(std::string msg) {
    return Status(StatusCode::kAlreadyExists, std::move(msg));
  }
  static Status FailedPrecondition(std::string msg) {
    return Status(StatusCode::kFailedPrecondition, std::move(msg));
  }
  static Status Corruption(std::string msg) {
    return Status(StatusCode::kCorruption, std::move(msg));
  }
  static Status IoError(std::string msg) { return Status(StatusCode::kIoError, std::move(msg)); }
  static Status ResourceExhausted(std::string msg) {
    return Status(StatusCode::kResourceExhausted, std::move(msg));
  }
  static Status Internal(std::string msg) { return Status(StatusCode::kInternal, std::move(msg)); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: embedding has 12 values, expected 256"
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  Status(StatusCode code, std::string msg) : code_(code), message_(std::move(msg)) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status has no value");
  }
  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace dynspec

#define DYNSPEC_RETURN_IF_ERROR(expr) \
  do {                                \
    ::dynspec::Status _st = (expr);   \
    if (!_st.ok()) return _st;        \
  } while (0)

#define DYNSPEC_CONCAT_INNER(a, b) a##b
#define DYNSPEC_CONCAT(a, b) DYNSPEC_CONCAT_INNER(a, b)
#define DYNSPEC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
#define DYNSPEC_ASSIGN_OR_RETURN(lhs, expr) \
  DYNSPEC_ASSIGN_OR_RETURN_IMPL(DYNSPEC_CONCAT(_res_, __LINE__), lhs, expr)
