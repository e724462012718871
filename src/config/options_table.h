// The one table of engine settings exposed at the edges. The CLI turns each entry into a
// `--name VALUE` flag (and its --help text); the server reports them at GET /v1/config;
// both set them through the same parser, so a setting is documented and validated once.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "dynspec/options.h"
#include "dynspec/status.h"

namespace dynspec {

struct OptionEntry {
  std::string name;  // dotted path, e.g. "blend.k"
  std::string help;
  std::function<std::string(const EngineOptions&)> get;
  // Parses `text` into the field; InvalidArgument naming the option on a bad value. Range
  // checks happen in ValidateOptions.
  std::function<Status(EngineOptions&, const std::string& text)> set;
};

const std::vector<OptionEntry>& EngineOptionTable();

// Sets one option by name; NotFound for an unknown name.
Status SetEngineOption(EngineOptions& options, const std::string& name, const std::string& text);

// {"blend.k": "16", ...} as a JSON object text, for display and GET /v1/config.
std::string EngineOptionsToJson(const EngineOptions& options);

// Parses "click:binary,dwell_seconds:regression_log1p" into heads.
Result<std::vector<HeadSpec>> ParseHeads(const std::string& text);
std::string FormatHeads(const std::vector<HeadSpec>& heads);
// Parses "click=1,like=2,dwell_seconds=0.02@300" into reward terms (@ gives the cap).
Result<std::vector<RewardTerm>> ParseRewardTerms(const std::string& text);
std::string FormatRewardTerms(const std::vector<RewardTerm>& terms);

}  // namespace dynspec
