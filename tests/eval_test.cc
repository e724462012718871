// Tests for the evaluation-harness utilities in src/eval/: event files, the Amazon converter,
// metrics, the progress bar, SVG charts and text tables.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "eval/amazon.h"
#include "eval/events.h"
#include "eval/metrics.h"
#include "eval/progress.h"
#include "eval/svg_plot.h"
#include "eval/table.h"
#include "test_util.h"

#ifndef DYNSPEC_DATA_DIR
#define DYNSPEC_DATA_DIR "data"
#endif

namespace dynspec::eval {
namespace {

namespace fs = std::filesystem;
using dynspec::testing_util::ScopedTempDir;

// A fresh directory per test, removed afterwards.

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Expects `r` to fail with InvalidArgument and a message containing every one of `parts`.
template <typename T>
void ExpectError(const Result<T>& r, const std::vector<std::string>& parts,
                 StatusCode code = StatusCode::kInvalidArgument) {
  ASSERT_FALSE(r.ok()) << "expected an error containing " << parts[0];
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  for (const std::string& p : parts) {
    EXPECT_TRUE(Contains(r.status().message(), p))
        << "message \"" << r.status().message() << "\" lacks \"" << p << "\"";
  }
}

// ---------------------------------------------------------------------------------------------
// Events

std::vector<ReplayEvent> SampleEvents() {
  std::vector<ReplayEvent> v(3);
  v[0].timestamp = 1005177600;
  v[0].user = "U1";
  v[0].item = "B0001";
  v[0].provider = "Hearst";
  v[0].text =
      "Quotes \"inside\", a comma, a\nnewline, a tab\t, a \\ backslash, a control \x01 and "
      "unicode: caf\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x93\x96";
  v[0].vector = {0.1f, -2.5f, 3.14159274f, 1e-30f, 0.0f};
  v[0].responses = {{"like", 1}, {"dwell_seconds", 42.5}};
  v[0].context.dense = {0.5f, 1.0f};
  v[0].context.sparse = {{"zeta", 1.0f}, {"alpha", -0.25f}};  // order must survive
  v[1].timestamp = 1005177600;                                // equal timestamps are fine
  v[1].item = "B0001";  // provider/text optional after the first event
  v[1].responses = {{"like", 0}};
  v[2].timestamp = 1005177700;
  v[2].user = "U2";
  v[2].item = "B0002";
  v[2].provider = "Conde Nast";
  v[2].vector = {1.0f, 2.0f};  // vector instead of text
  v[2].responses = {{"like", 1}};
  return v;
}

void ExpectSameEvents(const std::vector<ReplayEvent>& a, const std::vector<ReplayEvent>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE("event " + std::to_string(i));
    EXPECT_EQ(a[i].timestamp, b[i].timestamp);
    EXPECT_EQ(a[i].user, b[i].user);
    EXPECT_EQ(a[i].item, b[i].item);
    EXPECT_EQ(a[i].provider, b[i].provider);
    EXPECT_EQ(a[i].text, b[i].text);
    EXPECT_EQ(a[i].vector, b[i].vector);
    EXPECT_EQ(a[i].responses, b[i].responses);
    EXPECT_EQ(a[i].context.dense, b[i].context.dense);
    EXPECT_EQ(a[i].context.sparse, b[i].context.sparse);
  }
}

TEST(EventsTest, JsonlRoundTrip) {
  ScopedTempDir dir;
  const auto events = SampleEvents();
  const std::string path = dir.Sub("events.jsonl");
  ASSERT_TRUE(WriteEventsJsonl(path, events).ok());
  auto back = ReadEvents(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameEvents(events, *back);

  // One object per line, empty optional fields left out, floats in shortest form.
  std::ifstream in(path);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(in, line)) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(Contains(lines[0], "\"vector\":[0.1,-2.5,3.1415927,1e-30,0]")) << lines[0];
  EXPECT_TRUE(Contains(lines[0], "\"sparse\":{\"zeta\":1,\"alpha\":-0.25}")) << lines[0];
  EXPECT_EQ(lines[1], "{\"ts\":1005177600,\"item\":\"B0001\",\"responses\":{\"like\":0}}");
}

TEST(EventsTest, ReadsDocumentedJsonlExample) {
  ScopedTempDir dir;
  const std::string path =
      dir.Write("ex.JSONL",
                "{\"ts\":1005177600,\"user\":\"U1\",\"item\":\"B0001\",\"provider\":\"Hearst\","
                "\"text\":\"Cooking, travel\",\"responses\":{\"like\":1},"
                "\"context\":{\"dense\":[0.5,1.0],\"sparse\":{\"country=us\":1.0}}}\r\n"
                "\n"
                "   \n"
                "{\"item\":\"B0001\",\"ts\":1005177601,\"responses\":{\"like\":0,\"dwell\":3}}\n");
  auto r = ReadEvents(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].provider, "Hearst");
  EXPECT_EQ((*r)[0].context.dense, (std::vector<float>{0.5f, 1.0f}));
  ASSERT_EQ((*r)[0].context.sparse.size(), 1u);
  EXPECT_EQ((*r)[0].context.sparse[0].first, "country=us");
  EXPECT_EQ((*r)[1].timestamp, 1005177601);
  EXPECT_EQ((*r)[1].responses.at("dwell"), 3.0);
}

TEST(EventsTest, NanInsideStringsIsText) {
  ScopedTempDir dir;
  auto r = ReadEvents(dir.Write("s.jsonl",
                                "{\"ts\":1,\"item\":\"NaN\",\"provider\":\"Infinity\",\"text\":"
                                "\"say \\\"NaN\\\" -Infinity 1e999\","
                                "\"responses\":{\"NaN\":1e308}}\n"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].item, "NaN");
  EXPECT_EQ((*r)[0].text, "say \"NaN\" -Infinity 1e999");
  EXPECT_EQ((*r)[0].responses.at("NaN"), 1e308);
}

TEST(EventsTest, CsvWithQuotesAndNewlines) {
  ScopedTempDir dir;
  const std::string path =
      dir.Write("events.csv",
                "\xEF\xBB\xBFts,user,item,provider,text,like,dwell\r\n"
                "100,U1,B1,\"Hearst, Inc.\",\"He said \"\"hi\"\"\",1,\r\n"
                "100,U2,B2,Conde,\"line one\nline two, with comma\",0,12.5\n"
                "\n"
                "101,,B1,,,,3\n"
                "102,U3,\"B3\",P3,plain text,1,\"\"");  // no newline at the end
  auto r = ReadEvents(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 4u);
  const auto& e = *r;
  EXPECT_EQ(e[0].provider, "Hearst, Inc.");
  EXPECT_EQ(e[0].text, "He said \"hi\"");
  EXPECT_EQ(e[0].responses, (Responses{{"like", 1}}));  // empty dwell = not observed
  EXPECT_EQ(e[1].text, "line one\nline two, with comma");
  EXPECT_EQ(e[1].responses, (Responses{{"like", 0}, {"dwell", 12.5}}));
  EXPECT_EQ(e[2].user, "");
  EXPECT_EQ(e[2].item, "B1");
  EXPECT_EQ(e[2].responses, (Responses{{"dwell", 3}}));
  EXPECT_EQ(e[3].item, "B3");
  EXPECT_EQ(e[3].timestamp, 102);
}

TEST(EventsTest, CsvErrorsNameLineAndField) {
  ScopedTempDir dir;
  const std::string header = "ts,user,item,provider,text,like\n";
  // The decreasing timestamp is on the record that starts on line 4 (line 2's record spans
  // two lines).
  ExpectError(ReadEvents(dir.Write("a.csv", header + "5,U,B1,P,\"two\nlines\",1\n4,U,B1,,,0\n")),
              {"a.csv:4", "\"ts\"", "before the previous"});
  ExpectError(ReadEvents(dir.Write("b.csv", "")), {"b.csv:1", "missing header"});
  ExpectError(ReadEvents(dir.Write("c.csv", "user,item,like\nU,B,1\n")), {"c.csv:1", "\"ts\""});
  ExpectError(ReadEvents(dir.Write("d.csv", "ts,item,provider,text\n1,B,P,t\n")),
              {"d.csv:1", "response column"});
  ExpectError(ReadEvents(dir.Write("e.csv", header + "1,U,B,P,t,1\n2,U,B,P,t\n")),
              {"e.csv:3", "expected 6 fields, got 5"});
  ExpectError(ReadEvents(dir.Write("f.csv", header + "1,U,B,P,t,yes\n")),
              {"f.csv:2", "\"like\"", "finite number"});
  ExpectError(ReadEvents(dir.Write("g.csv", header + "1,U,B,P,t,nan\n")), {"g.csv:2", "\"like\""});
  ExpectError(ReadEvents(dir.Write("h.csv", header + "1,U,B,P,t,1\n2,U,B,P,\"open\n")),
              {"h.csv:3", "unterminated"});
  ExpectError(ReadEvents(dir.Write("i.csv", header + "1,U,B,P,t,\n")),
              {"i.csv:2", "\"responses\"", "no response"});
  ExpectError(ReadEvents(dir.Write("j.csv", header + "x1,U,B,P,t,1\n")),
              {"j.csv:2", "\"ts\"", "integer"});
  ExpectError(ReadEvents(dir.Write("k.csv", header + "1,U,,P,t,1\n")), {"k.csv:2", "\"item\""});
  ExpectError(ReadEvents(dir.Write("l.csv", header + "1,U,B,\"P\"x,t,1\n")),
              {"l.csv:2", "closing quote"});
  ExpectError(ReadEvents(dir.Write("m.csv", "ts,item,like,like\n1,B,1,1\n")),
              {"m.csv:1", "\"like\"", "duplicate"});
  ExpectError(ReadEvents(dir.Write("n.csv", header + "1,U,B,,t,1\n")),
              {"n.csv:2", "\"provider\"", "first event"});
}

TEST(EventsTest, JsonlErrorsNameLineAndField) {
  ScopedTempDir dir;
  const std::string good =
      "{\"ts\":1,\"item\":\"B\",\"provider\":\"P\",\"text\":\"t\",\"responses\":{\"like\":1}}\n";
  auto write = [&](const std::string& name, const std::string& second_line) {
    return dir.Write(name, good + second_line + "\n");
  };
  // Bad JSON.
  ExpectError(ReadEvents(write("bad.jsonl", "{\"ts\":2,\"item\":\"B\",")), {"bad.jsonl:2", "JSON"});
  ExpectError(ReadEvents(write("arr.jsonl", "[1,2]")), {"arr.jsonl:2", "object"});
  // Unknown key, named.
  ExpectError(ReadEvents(write("unk.jsonl",
                               "{\"ts\":2,\"item\":\"B\",\"clicks\":1,"
                               "\"responses\":{\"like\":1}}")),
              {"unk.jsonl:2", "\"clicks\"", "unknown key"});
  ExpectError(ReadEvents(write("unk2.jsonl",
                               "{\"ts\":2,\"item\":\"B\",\"responses\":{\"like\":1},"
                               "\"context\":{\"dense\":[1],\"extra\":2}}")),
              {"unk2.jsonl:2", "\"context.extra\"", "unknown key"});
  // NaN / Infinity / overflow.
  ExpectError(
      ReadEvents(write("nan.jsonl", "{\"ts\":2,\"item\":\"B\",\"responses\":{\"like\":NaN}}")),
      {"nan.jsonl:2", "\"responses.like\"", "not a finite number"});
  ExpectError(
      ReadEvents(write("tsnan.jsonl", "{\"ts\":NaN,\"item\":\"B\",\"responses\":{\"like\":1}}")),
      {"tsnan.jsonl:2", "\"ts\"", "non-finite"});
  ExpectError(
      ReadEvents(write("nanbad.jsonl", "{\"ts\":2,\"item\":\"B\",\"responses\":{\"like\":NaN}")),
      {"nanbad.jsonl:2", "invalid JSON"});
  ExpectError(ReadEvents(write("inf.jsonl",
                               "{\"ts\":2,\"item\":\"B\",\"vector\":[-Infinity],"
                               "\"responses\":{\"like\":1}}")),
              {"inf.jsonl:2", "\"vector[0]\"", "not a finite number"});
  ExpectError(
      ReadEvents(write("big.jsonl", "{\"ts\":2,\"item\":\"B\",\"responses\":{\"like\":1e999}}")),
      {"big.jsonl:2", "\"responses.like\"", "not a finite number"});
  ExpectError(ReadEvents(write("fl.jsonl",
                               "{\"ts\":2,\"item\":\"B\",\"vector\":[1e300],"
                               "\"responses\":{\"like\":1}}")),
              {"fl.jsonl:2", "\"vector[0]\"", "float range"});
  // Missing / empty item.
  ExpectError(ReadEvents(write("noitem.jsonl", "{\"ts\":2,\"responses\":{\"like\":1}}")),
              {"noitem.jsonl:2", "\"item\"", "missing"});
  ExpectError(
      ReadEvents(write("emptyitem.jsonl", "{\"ts\":2,\"item\":\"\",\"responses\":{\"like\":1}}")),
      {"emptyitem.jsonl:2", "\"item\"", "empty"});
  // Decreasing timestamp.
  ExpectError(
      ReadEvents(write("dec.jsonl", "{\"ts\":0,\"item\":\"B\",\"responses\":{\"like\":1}}")),
      {"dec.jsonl:2", "\"ts\"", "before the previous"});
  // Empty or missing responses.
  ExpectError(ReadEvents(write("empty.jsonl", "{\"ts\":2,\"item\":\"B\",\"responses\":{}}")),
              {"empty.jsonl:2", "\"responses\"", "empty"});
  ExpectError(ReadEvents(write("nores.jsonl", "{\"ts\":2,\"item\":\"B\"}")),
              {"nores.jsonl:2", "\"responses\"", "missing"});
  // Wrong types.
  ExpectError(
      ReadEvents(write("tsstr.jsonl", "{\"ts\":\"2\",\"item\":\"B\",\"responses\":{\"like\":1}}")),
      {"tsstr.jsonl:2", "\"ts\"", "integer"});
  ExpectError(
      ReadEvents(write("tsflt.jsonl", "{\"ts\":2.5,\"item\":\"B\",\"responses\":{\"like\":1}}")),
      {"tsflt.jsonl:2", "\"ts\"", "integer"});
  ExpectError(
      ReadEvents(write("itemnum.jsonl", "{\"ts\":2,\"item\":7,\"responses\":{\"like\":1}}")),
      {"itemnum.jsonl:2", "\"item\"", "string"});
  ExpectError(
      ReadEvents(write("resstr.jsonl", "{\"ts\":2,\"item\":\"B\",\"responses\":{\"like\":\"1\"}}")),
      {"resstr.jsonl:2", "\"responses.like\"", "number"});
  ExpectError(ReadEvents(write("vec.jsonl",
                               "{\"ts\":2,\"item\":\"B\",\"vector\":[1,\"x\"],"
                               "\"responses\":{\"like\":1}}")),
              {"vec.jsonl:2", "\"vector[1]\""});
  ExpectError(ReadEvents(write("sparse.jsonl",
                               "{\"ts\":2,\"item\":\"B\",\"responses\":{\"like\":1},"
                               "\"context\":{\"sparse\":[1]}}")),
              {"sparse.jsonl:2", "\"context.sparse\""});
  // Missing ts, duplicate key.
  ExpectError(ReadEvents(write("nots.jsonl", "{\"item\":\"B\",\"responses\":{\"like\":1}}")),
              {"nots.jsonl:2", "\"ts\"", "missing"});
  ExpectError(ReadEvents(write("dup.jsonl",
                               "{\"ts\":2,\"item\":\"B\",\"item\":\"C\","
                               "\"responses\":{\"like\":1}}")),
              {"dup.jsonl:2", "\"item\"", "duplicate"});
  // First event of an item without provider, or without text or vector.
  ExpectError(ReadEvents(write("noprov.jsonl",
                               "{\"ts\":2,\"item\":\"C\",\"text\":\"t\","
                               "\"responses\":{\"like\":1}}")),
              {"noprov.jsonl:2", "\"provider\"", "first event"});
  ExpectError(ReadEvents(write("notext.jsonl",
                               "{\"ts\":2,\"item\":\"C\",\"provider\":\"P\","
                               "\"responses\":{\"like\":1}}")),
              {"notext.jsonl:2", "\"text\"", "first event"});
  // File problems.
  ExpectError(ReadEvents(dir.Sub("missing.jsonl")), {"missing.jsonl"}, StatusCode::kIoError);
  ExpectError(ReadEvents(dir.Write("events.txt", good)), {"events.txt", "extension"});
}

TEST(EventsTest, WriterRejectsInvalidEvents) {
  ScopedTempDir dir;
  auto events = SampleEvents();
  events[1].responses["like"] = std::nan("");
  Status st = WriteEventsJsonl(dir.Sub("x.jsonl"), events);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(st.message(), "event 1")) << st.message();
  EXPECT_TRUE(Contains(st.message(), "responses.like")) << st.message();
  EXPECT_FALSE(fs::exists(dir.Sub("x.jsonl")));  // nothing written

  events = SampleEvents();
  events[2].timestamp = 5;
  st = WriteEventsJsonl(dir.Sub("y.jsonl"), events);
  EXPECT_TRUE(Contains(st.message(), "event 2")) << st.message();

  events = SampleEvents();
  events[0].responses.clear();
  st = WriteEventsJsonl(dir.Sub("z.jsonl"), events);
  EXPECT_TRUE(Contains(st.message(), "responses")) << st.message();

  events = SampleEvents();
  events[2].provider = "bad \xFF byte";
  st = WriteEventsJsonl(dir.Sub("u.jsonl"), events);
  EXPECT_TRUE(Contains(st.message(), "event 2")) << st.message();
  EXPECT_TRUE(Contains(st.message(), "\"provider\": not valid UTF-8")) << st.message();

  events = SampleEvents();
  events[1].context.sparse = {{"a", 1.0f}, {"a", 2.0f}};
  st = WriteEventsJsonl(dir.Sub("s.jsonl"), events);
  EXPECT_TRUE(Contains(st.message(), "context.sparse.a")) << st.message();

  EXPECT_EQ(WriteEventsJsonl(dir.Sub("no/such/dir/e.jsonl"), SampleEvents()).code(),
            StatusCode::kIoError);
}

// ---------------------------------------------------------------------------------------------
// Amazon converter

const std::string kAmazonDir = std::string(DYNSPEC_DATA_DIR) + "/amazon_magazine_subscriptions";

TEST(AmazonTest, ConvertsRealData) {
  AmazonStats stats;
  auto r =
      ConvertAmazon(kAmazonDir + "/Magazine_Subscriptions.csv",
                    kAmazonDir + "/meta_Magazine_Subscriptions.json.gz", AmazonOptions{}, &stats);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& events = *r;
  // Counts checked independently with Python (csv + gzip + json modules) and awk.
  EXPECT_EQ(stats.ratings_read, 89689u);
  EXPECT_EQ(stats.dropped_no_meta, 4470u);
  EXPECT_EQ(stats.dropped_no_brand, 1469u);
  EXPECT_EQ(stats.ratings_kept, 83750u);
  EXPECT_EQ(stats.ratings_read,
            stats.ratings_kept + stats.dropped_no_meta + stats.dropped_no_brand);
  EXPECT_EQ(stats.items, 2173u);
  EXPECT_EQ(stats.providers, 947u);
  ASSERT_EQ(events.size(), 83750u);

  size_t likes = 0;
  std::set<std::string> users;
  for (size_t i = 0; i < events.size(); ++i) {
    const ReplayEvent& e = events[i];
    if (i > 0) {
      ASSERT_LE(events[i - 1].timestamp, e.timestamp) << "event " << i;
    }
    ASSERT_FALSE(e.provider.empty()) << e.item;
    ASSERT_FALSE(e.text.empty()) << e.item;
    ASSERT_EQ(e.responses.size(), 1u);
    likes += e.responses.at("like") == 1.0;
    users.insert(e.user);
    ASSERT_FALSE(Contains(e.text, "<i>") || Contains(e.text, "<I>")) << e.item;
    ASSERT_FALSE(Contains(e.text, "&amp;")) << e.item;
  }
  EXPECT_EQ(likes, 62364u);  // ratings >= 4 among the kept ones: 74.5%
  EXPECT_EQ(users.size(), 67354u);
  EXPECT_EQ(events.front().timestamp, 1004054400);
  EXPECT_EQ(events.back().timestamp, 1537315200);
  // Stable: ties keep file order (lines 68, 69 and 639 of the ratings file).
  EXPECT_EQ(events[0].item, "B00005N7OD");
  EXPECT_EQ(events[0].user, "A1Y4463V55P6B");
  EXPECT_EQ(events[1].user, "A3NX5T8BX69XMJ");
  EXPECT_EQ(events[2].item, "B00005N7QC");

  // Provider and text on every event; text = description ; categories (first dropped).
  for (const ReplayEvent& e : events) {
    if (e.item != "B00005N7NQ") continue;
    EXPECT_EQ(e.provider, "Reason Magazine");
    EXPECT_EQ(e.text.rfind("REASON is edited for people interested in economic", 0), 0u) << e.text;
    EXPECT_TRUE(Contains(e.text,
                         "cultural commentary. ; Professional & Educational Journals ; "
                         "Professional & Trade ; Humanities & Social Sciences ; "
                         "Economics & Economic Theory"))
        << e.text;
    EXPECT_FALSE(Contains(e.text, "Magazine Subscriptions"));
  }

  // A stricter threshold: only 5-star ratings are likes.
  auto strict = ConvertAmazon(kAmazonDir + "/Magazine_Subscriptions.csv",
                              kAmazonDir + "/meta_Magazine_Subscriptions.json.gz",
                              AmazonOptions{.like_threshold = 5.0}, nullptr);
  ASSERT_TRUE(strict.ok());
  size_t five = 0;
  for (const ReplayEvent& e : *strict) five += e.responses.at("like") == 1.0;
  EXPECT_EQ(five, 50611u);

  // The converted events form a valid event file. The first event of every item carries all
  // the content (80 MB of text over all events), so those are enough to check it.
  std::vector<ReplayEvent> firsts;
  std::set<std::string> seen;
  for (const ReplayEvent& e : events) {
    if (seen.insert(e.item).second) firsts.push_back(e);
  }
  ASSERT_EQ(firsts.size(), 2173u);
  ScopedTempDir dir;
  ASSERT_TRUE(WriteEventsJsonl(dir.Sub("amazon.jsonl"), firsts).ok());
  auto back = ReadEvents(dir.Sub("amazon.jsonl"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameEvents(firsts, *back);
}

void WriteGz(const std::string& path, const std::string& content) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, content.data(), static_cast<unsigned>(content.size())),
            static_cast<int>(content.size()));
  gzclose(f);
}

TEST(AmazonTest, SmallFilesLongLinesAndHtml) {
  ScopedTempDir dir;
  const std::string long_desc(200000, 'x');  // one line far longer than any read buffer
  const std::string meta_path = dir.Sub("meta.json.gz");
  WriteGz(meta_path,
          "{\"asin\":\"A1\",\"brand\":\"  Acme  \",\"title\":\"<span class=\\\"a\\\"\","
          "\"description\":[\"<b>Bold</b> words&amp;more<br>next &#x2019;q&#x2019; &rsquo;\","
          "\"second\"],\"category\":[\"Magazine Subscriptions\",\"Arts &amp; Crafts\"]}\n"
          "{\"asin\":\"A1\",\"brand\":\"Ignored duplicate\"}\n"
          "{\"asin\":\"A2\",\"brand\":\"\",\"details\":{\"Publisher:\":\"Pub Co\"},"
          "\"description\":[\"" +
              long_desc +
              "\"]}\n"
              "{\"asin\":\"A3\",\"brand\":\"\",\"details\":{}}\n"
              "{\"asin\":\"A4\",\"brand\":\"Bare\",\"description\":[],\"category\":[]}\n");
  const std::string ratings = dir.Write("r.csv",
                                        "A1,u1,5.0,300\n"
                                        "A2,u2,3.0,100\n"
                                        "A3,u3,5.0,100\n"
                                        "A9,u4,5.0,100\n"
                                        "A4,u5,4.0,300\r\n"
                                        "A1,u6,1.0,200\n");
  AmazonStats stats;
  auto r = ConvertAmazon(ratings, meta_path, AmazonOptions{}, &stats);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(stats.ratings_read, 6u);
  EXPECT_EQ(stats.ratings_kept, 4u);
  EXPECT_EQ(stats.dropped_no_meta, 1u);
  EXPECT_EQ(stats.dropped_no_brand, 1u);
  EXPECT_EQ(stats.items, 3u);
  EXPECT_EQ(stats.providers, 3u);
  const auto& e = *r;
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].item, "A2");
  EXPECT_EQ(e[0].provider, "Pub Co");
  EXPECT_EQ(e[0].text, long_desc);
  EXPECT_EQ(e[0].responses.at("like"), 0.0);
  EXPECT_EQ(e[1].item, "A1");
  EXPECT_EQ(e[1].user, "u6");
  EXPECT_EQ(e[1].provider, "Acme");
  EXPECT_EQ(e[1].text,
            "Bold words&more next \xE2\x80\x99q\xE2\x80\x99 \xE2\x80\x99 second ; Arts & Crafts");
  EXPECT_EQ(e[2].user, "u1");  // tie at 300 keeps file order
  EXPECT_EQ(e[2].responses.at("like"), 1.0);
  EXPECT_EQ(e[3].item, "A4");
  EXPECT_EQ(e[3].text, "Bare");  // no description or category: provider name
  EXPECT_EQ(e[3].responses.at("like"), 1.0);
}

TEST(AmazonTest, Errors) {
  ScopedTempDir dir;
  const std::string meta = dir.Sub("meta.json.gz");
  WriteGz(meta, "{\"asin\":\"A1\",\"brand\":\"B\"}\n");
  const std::string ratings = dir.Write("r.csv", "A1,u1,5.0,1\n");
  ExpectError(ConvertAmazon(dir.Sub("nope.csv"), meta, {}, nullptr), {"nope.csv"},
              StatusCode::kIoError);
  ExpectError(ConvertAmazon(ratings, dir.Sub("nope.json.gz"), {}, nullptr), {"nope.json.gz"},
              StatusCode::kIoError);
  ExpectError(ConvertAmazon(dir.Write("r2.csv", "A1,u1,5.0,1\nA1,u2,5.0\n"), meta, {}, nullptr),
              {"r2.csv:2", "4 fields"});
  ExpectError(ConvertAmazon(dir.Write("r3.csv", "A1,u1,5.0,1\nA1,u2,five,2\n"), meta, {}, nullptr),
              {"r3.csv:2", "\"rating\""});
  ExpectError(
      ConvertAmazon(dir.Write("r4.csv", "A1,u1,5.0,1\n\nA1,u2,5.0,2.5\n"), meta, {}, nullptr),
      {"r4.csv:3", "\"unix_time\""});
  const std::string bad_meta = dir.Sub("bad.json.gz");
  WriteGz(bad_meta, "{\"asin\":\"A1\",\"brand\":\"B\"}\n{\"asin\":\"A2\",\n");
  ExpectError(ConvertAmazon(ratings, bad_meta, {}, nullptr), {"bad.json.gz:2", "JSON"});
  const std::string no_asin = dir.Sub("noasin.json.gz");
  WriteGz(no_asin, "{\"brand\":\"B\"}\n");
  ExpectError(ConvertAmazon(ratings, no_asin, {}, nullptr), {"noasin.json.gz:1", "\"asin\""});
  const std::string bad_desc = dir.Sub("baddesc.json.gz");
  WriteGz(bad_desc, "{\"asin\":\"A1\",\"brand\":\"B\",\"description\":[1]}\n");
  ExpectError(ConvertAmazon(ratings, bad_desc, {}, nullptr),
              {"baddesc.json.gz:1", "\"description[0]\""});
}

// ---------------------------------------------------------------------------------------------
// Metrics

TEST(MetricsTest, AucHandComputed) {
  // Positives 0.35, 0.8; negatives 0.1, 0.4: pairs won 1 + 0 + 1 + 1 = 3 of 4.
  EXPECT_DOUBLE_EQ(Auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);
  // Ties get half credit: positives 0.5, 0.9; negatives 0.5, 0.2 -> (0.5 + 1 + 1 + 1) / 4.
  EXPECT_DOUBLE_EQ(Auc({0.5, 0.5, 0.2, 0.9}, {1, 0, 0, 1}), 0.875);
  // All scores equal -> 0.5; perfectly wrong -> 0.
  EXPECT_DOUBLE_EQ(Auc({0.3, 0.3, 0.3, 0.3}, {1, 0, 1, 0}), 0.5);
  EXPECT_DOUBLE_EQ(Auc({0.9, 0.1}, {0, 1}), 0.0);
  EXPECT_TRUE(std::isnan(Auc({0.1, 0.2}, {1, 1})));
  EXPECT_TRUE(std::isnan(Auc({}, {})));

  BinaryMetrics m;
  const std::vector<double> p = {0.5, 0.5, 0.2, 0.9, 0.7, 0.2};
  const std::vector<int> y = {1, 0, 0, 1, 0, 1};
  for (size_t i = 0; i < p.size(); ++i) m.Add(p[i], y[i]);
  // Positives 0.5, 0.9, 0.2; negatives 0.5, 0.2, 0.7:
  // 0.5: .5+1+0; 0.9: 1+1+1; 0.2: 0+.5+0 -> 5 / 9.
  EXPECT_DOUBLE_EQ(m.Auc(), 5.0 / 9.0);
  EXPECT_DOUBLE_EQ(Auc(p, y), 5.0 / 9.0);
  EXPECT_EQ(m.count(), 6u);
}

TEST(MetricsTest, LogLossMeansAndCalibration) {
  BinaryMetrics m;
  EXPECT_TRUE(std::isnan(m.LogLoss()));
  EXPECT_TRUE(std::isnan(m.Auc()));
  EXPECT_TRUE(std::isnan(m.MeanPrediction()));
  EXPECT_TRUE(std::isnan(m.ExpectedCalibrationError()));
  m.Add(0.8, 1);
  m.Add(0.3, 0);
  // -(ln 0.8 + ln 0.7) / 2
  EXPECT_NEAR(m.LogLoss(), 0.2899092476264711, 1e-12);
  EXPECT_DOUBLE_EQ(m.MeanPrediction(), 0.55);
  EXPECT_DOUBLE_EQ(m.PositiveRate(), 0.5);
  EXPECT_TRUE(std::isnan(BinaryMetrics().PositiveRate()));

  BinaryMetrics clip;
  clip.Add(0.0, 1);  // clipped to 1e-7
  clip.Add(1.0, 1);  // clipped to 1 - 1e-7
  EXPECT_NEAR(clip.LogLoss(), (-std::log(1e-7) - std::log(1 - 1e-7)) / 2, 1e-9);
  EXPECT_TRUE(std::isnan(clip.Auc()));  // one class only

  BinaryMetrics cal;
  for (double p : {0.15, 0.15, 0.85, 0.85}) cal.Add(p, 0);
  // Rebuild with labels: bin 1 holds p=.15 (y 0, 1), bin 8 holds p=.85 (y 1, 1).
  BinaryMetrics c2;
  c2.Add(0.15, 0);
  c2.Add(0.15, 1);
  c2.Add(0.85, 1);
  c2.Add(0.85, 1);
  // (2 * |0.15 - 0.5| + 2 * |0.85 - 1|) / 4 = 0.25
  EXPECT_NEAR(c2.ExpectedCalibrationError(10), 0.25, 1e-12);
  // One bin: |mean p - mean y| = |0.5 - 0.75|.
  EXPECT_NEAR(c2.ExpectedCalibrationError(1), 0.25, 1e-12);
  EXPECT_NEAR(cal.ExpectedCalibrationError(10), 0.5, 1e-12);
  BinaryMetrics edge;
  edge.Add(1.0, 1);  // p = 1 falls in the last bin
  edge.Add(0.0, 0);
  EXPECT_NEAR(edge.ExpectedCalibrationError(10), 0.0, 1e-12);
  EXPECT_TRUE(std::isnan(edge.ExpectedCalibrationError(0)));
}

// ---------------------------------------------------------------------------------------------
// Progress bar

TEST(ProgressTest, FormatLine) {
  EXPECT_EQ(ProgressBar::FormatLine("replay", 50, 100, 10.0, false),
            "replay [##########..........]  50.0%  50/100  5.0/s  ETA 0:10");
  EXPECT_EQ(ProgressBar::FormatLine("replay", 89689, 89689, 2.0, true),
            "replay [####################] 100.0%  89,689/89,689  44,845/s  done in 0:02");
  EXPECT_EQ(ProgressBar::FormatLine("scan", 1234567, 0, 10.0, false),
            "scan  1,234,567  123,457/s  elapsed 0:10");
  EXPECT_EQ(ProgressBar::FormatLine("x", 0, 10, 0.0, false),
            "x [....................]   0.0%  0/10  -/s  ETA --");
  EXPECT_EQ(ProgressBar::FormatDuration(7), "0:07");
  EXPECT_EQ(ProgressBar::FormatDuration(754), "12:34");
  EXPECT_EQ(ProgressBar::FormatDuration(3723), "1:02:03");
}

TEST(ProgressTest, PlainModePrintsEveryTenPercent) {
  std::ostringstream out;
  {
    ProgressBar bar("replay", 1000, out);
    EXPECT_FALSE(bar.interactive());  // a string stream is not a terminal
    for (uint64_t i = 1; i <= 1000; ++i) bar.Update(i);
    bar.Finish();
    bar.Finish();      // idempotent
    bar.Update(1000);  // ignored after Finish
  }
  std::vector<std::string> lines;
  std::istringstream in(out.str());
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 10u) << out.str();  // 10% .. 90%, then the final line
  EXPECT_TRUE(Contains(lines[0], " 10.0%  100/1,000")) << lines[0];
  EXPECT_TRUE(Contains(lines[8], " 90.0%")) << lines[8];
  EXPECT_TRUE(Contains(lines[9], "100.0%  1,000/1,000")) << lines[9];
  EXPECT_TRUE(Contains(lines[9], "done in")) << lines[9];
  EXPECT_EQ(out.str().find('\r'), std::string::npos);
}

TEST(ProgressTest, InteractiveModeRedrawsInPlace) {
  std::ostringstream out;
  {
    ProgressBar bar("replay", 100, out);
    bar.set_interactive(true);
    for (uint64_t i = 1; i <= 100; ++i) bar.Update(i);  // fast: throttled to ~10/s
    // Destructor finishes the bar.
  }
  const std::string s = out.str();
  EXPECT_EQ(s.front(), '\r');
  EXPECT_EQ(s.back(), '\n');
  EXPECT_LE(std::count(s.begin(), s.end(), '\r'), 3);
  EXPECT_TRUE(Contains(s, "100.0%"));
}

// ---------------------------------------------------------------------------------------------
// SVG

// Checks that start and end tags nest properly (comments, the XML declaration and
// self-closing tags aside) and that text holds no raw '<' or stray '&'.
bool WellFormed(const std::string& svg, std::string* why) {
  std::vector<std::string> stack;
  size_t i = 0;
  while (i < svg.size()) {
    if (svg[i] == '&') {
      size_t semi = svg.find(';', i);
      const std::string ent = semi == std::string::npos ? "" : svg.substr(i, semi - i + 1);
      if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;") {
        *why = "bad entity at " + std::to_string(i);
        return false;
      }
      i = semi + 1;
      continue;
    }
    if (svg[i] != '<') {
      ++i;
      continue;
    }
    size_t close = svg.find('>', i);
    if (close == std::string::npos) {
      *why = "unclosed tag";
      return false;
    }
    std::string tag = svg.substr(i + 1, close - i - 1);
    i = close + 1;
    if (tag.empty() || tag[0] == '?' || tag[0] == '!') continue;
    if (tag.back() == '/') continue;
    if (tag[0] == '/') {
      std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) {
        *why = "unbalanced </" + name + ">";
        return false;
      }
      stack.pop_back();
      continue;
    }
    stack.push_back(tag.substr(0, tag.find_first_of(" \t\n")));
  }
  if (!stack.empty()) *why = "unclosed <" + stack.back() + ">";
  return stack.empty();
}

TEST(SvgTest, RendersWellFormedChart) {
  LineChart chart;
  chart.title = "Log-loss <by> strategy & \"cluster\"";
  chart.x_label = "events replayed";
  chart.y_label = "log-loss";
  Series a{"global model", {}};
  Series b{"cluster prior & neighbours", {}};
  for (int i = 0; i <= 20; ++i) {
    a.points.emplace_back(i * 5000.0, 0.69 - 0.005 * i);
    b.points.emplace_back(i * 5000.0, i == 7 ? std::nan("") : 0.69 - 0.009 * i);
  }
  chart.series = {a, b, Series{"empty", {}}};
  const std::string svg = RenderSvg(chart);
  std::string why;
  EXPECT_TRUE(WellFormed(svg, &why)) << why;
  EXPECT_TRUE(Contains(svg, ">global model</text>"));
  EXPECT_TRUE(Contains(svg, ">cluster prior &amp; neighbours</text>"));
  EXPECT_TRUE(Contains(svg, "Log-loss &lt;by&gt; strategy &amp; &quot;cluster&quot;"));
  EXPECT_FALSE(Contains(svg, "nan"));
  EXPECT_FALSE(Contains(svg, "inf"));
  // The NaN point splits series b into two polylines; a is one.
  size_t polylines = 0;
  for (size_t p = svg.find("<polyline"); p != std::string::npos; p = svg.find("<polyline", p + 1)) {
    ++polylines;
  }
  EXPECT_EQ(polylines, 3u);
  EXPECT_TRUE(Contains(svg, ">100k</text>"));  // nice x ticks, compact labels
  EXPECT_TRUE(Contains(svg, ">0.50</text>"));

  // Degenerate charts still render.
  EXPECT_TRUE(WellFormed(RenderSvg(LineChart{}), &why)) << why;
  LineChart one;
  one.series = {Series{"one point", {{3.0, 3.0}}}};
  const std::string s1 = RenderSvg(one);
  EXPECT_TRUE(WellFormed(s1, &why)) << why;
  EXPECT_TRUE(Contains(s1, "<circle"));

  ScopedTempDir dir;
  ASSERT_TRUE(WriteSvg(dir.Sub("c.svg"), chart).ok());
  std::ifstream in(dir.Sub("c.svg"));
  std::stringstream buf;
  buf << in.rdbuf();
  EXPECT_EQ(buf.str(), svg);
  EXPECT_EQ(WriteSvg(dir.Sub("no/dir/c.svg"), chart).code(), StatusCode::kIoError);
}

// ---------------------------------------------------------------------------------------------
// Tables

TEST(TableTest, RendersAlignedText) {
  TextTable t({"strategy", "auc", "n"});
  t.AddRow({"global", "0.7012", "83,750"});
  t.AddRow({"cluster prior", "-0.5", "12"});
  t.AddRow({"caf\xC3\xA9", "nan"});  // padded with an empty cell
  EXPECT_EQ(t.rows(), 3u);
  EXPECT_EQ(t.Render(),
            "strategy          auc       n\n"
            "-------------  ------  ------\n"
            "global         0.7012  83,750\n"
            "cluster prior    -0.5      12\n"
            "caf\xC3\xA9              nan\n");
}

TEST(TableTest, RendersCsv) {
  TextTable t({"name", "note"});
  t.AddRow({"a,b", "say \"hi\""});
  t.AddRow({"multi\nline", " padded"});
  t.AddRow({"plain", ""});
  EXPECT_EQ(t.RenderCsv(),
            "name,note\r\n"
            "\"a,b\",\"say \"\"hi\"\"\"\r\n"
            "\"multi\nline\",\" padded\"\r\n"
            "plain,\r\n");
}

TEST(TableTest, FormatDouble) {
  EXPECT_EQ(FormatDouble(0.12345, 3), "0.123");
  EXPECT_EQ(FormatDouble(2.5, 0), "2");  // round half to even
  EXPECT_EQ(FormatDouble(-1.0 / 3, 2), "-0.33");
  EXPECT_EQ(FormatDouble(-0.0001, 2), "0.00");
  EXPECT_EQ(FormatDouble(std::nan(""), 3), "nan");
  EXPECT_EQ(FormatDouble(-INFINITY, 3), "-inf");
  EXPECT_EQ(FormatDouble(1234.5678, 1), "1234.6");
}

}  // namespace
}  // namespace dynspec::eval
