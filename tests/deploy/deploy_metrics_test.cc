// deploy/'s Grafana dashboard and Prometheus alert rules name only metrics
// edged exports, and the dashboard has a panel for what every alert watches.
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "edge/metrics/prometheus_metrics.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The metric families edged exports (their `# TYPE` lines).
std::set<std::string> ExportedFamilies() {
  auto metrics = metrics::PrometheusMetrics::Create();
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  // As edged does: the Kafka family has children once its topics are known.
  (*metrics)->DeclareKafkaTopics(Direction::kIn, {"edge-commands-edge-1"});
  std::set<std::string> families;
  std::istringstream lines((*metrics)->TextExposition());
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string hash, type, name;
    if (words >> hash >> type >> name && hash == "#" && type == "TYPE") families.insert(name);
  }
  return families;
}

// The edge_* metric names in `text`, histogram series mapped to their
// family.
std::set<std::string> MetricNames(const std::string& text, const std::set<std::string>& families) {
  static const std::regex kName("edge_[a-z_]+");
  std::set<std::string> names;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kName);
       it != std::sregex_iterator(); ++it) {
    std::string name = it->str();
    for (const char* suffix : {"_bucket", "_count", "_sum"}) {
      std::string base = name.substr(0, name.size() - std::string(suffix).size());
      if (name.size() > base.size() && name.compare(base.size(), std::string::npos, suffix) == 0 &&
          families.count(base) != 0) {
        name = base;
      }
    }
    names.insert(name);
  }
  return names;
}

// Every `expr` of every panel of the dashboard, joined.
std::string DashboardExpressions(const google::protobuf::Struct& dashboard, int* panels) {
  std::string exprs;
  *panels = 0;
  for (const auto& panel : dashboard.fields().at("panels").list_value().values()) {
    ++*panels;
    const auto& fields = panel.struct_value().fields();
    EXPECT_TRUE(fields.count("title") != 0);
    auto targets = fields.find("targets");
    EXPECT_TRUE(targets != fields.end() && targets->second.list_value().values_size() > 0)
        << fields.at("title").string_value();
    if (targets == fields.end()) continue;
    for (const auto& target : targets->second.list_value().values()) {
      exprs += target.struct_value().fields().at("expr").string_value();
      exprs += "\n";
    }
  }
  return exprs;
}

TEST(DeployMetricsTest, TheDashboardParsesAndNamesOnlyExportedMetrics) {
  google::protobuf::Struct dashboard;
  auto parsed = google::protobuf::util::JsonStringToMessage(
      ReadFile(EDGE_DEPLOY_DIR "/grafana/edged-dashboard.json"), &dashboard);
  ASSERT_TRUE(parsed.ok()) << parsed.ToString();
  int panels = 0;
  std::string exprs = DashboardExpressions(dashboard, &panels);
  EXPECT_GE(panels, 7);
  std::set<std::string> families = ExportedFamilies();
  std::set<std::string> used = MetricNames(exprs, families);
  EXPECT_GE(used.size(), 10u);
  for (const std::string& name : used) {
    EXPECT_EQ(families.count(name), 1u) << name << " is not exported by edged";
  }
}

TEST(DeployMetricsTest, AlertRulesNameOnlyExportedMetricsAndEachHasAPanel) {
  std::string rules = ReadFile(EDGE_DEPLOY_DIR "/prometheus/edged-alerts.yml");
  std::set<std::string> families = ExportedFamilies();
  google::protobuf::Struct dashboard;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  ReadFile(EDGE_DEPLOY_DIR "/grafana/edged-dashboard.json"), &dashboard)
                  .ok());
  int panels = 0;
  std::set<std::string> on_dashboard =
      MetricNames(DashboardExpressions(dashboard, &panels), families);
  // The alerts an on-call needs (contract §10's operator kit).
  for (const char* alert :
       {"EdgeDown", "EdgeNotReady", "EdgeDeadLettersRising", "EdgeEventBufferSaturated",
        "EdgePeersDropping", "EdgeCommandLatencyHigh", "EdgeTrackerErrors"}) {
    EXPECT_NE(rules.find(std::string("alert: ") + alert), std::string::npos) << alert;
  }
  // Only the `expr:` parts: annotations may name metrics to look at next.
  std::string exprs;
  std::istringstream lines(rules);
  std::string line;
  bool in_expr = false;
  while (std::getline(lines, line)) {
    size_t at = line.find("expr:");
    if (at != std::string::npos) {
      in_expr = true;
      exprs += line.substr(at + 5) + "\n";
    } else if (in_expr && line.find_first_not_of(' ') != std::string::npos &&
               line.find(':') == std::string::npos) {
      exprs += line + "\n";  // a folded expression's continuation
    } else {
      in_expr = false;
    }
  }
  std::set<std::string> used = MetricNames(exprs, families);
  EXPECT_GE(used.size(), 6u);
  for (const std::string& name : used) {
    EXPECT_EQ(families.count(name), 1u) << name << " is not exported by edged";
    EXPECT_EQ(on_dashboard.count(name), 1u) << name << " has no dashboard panel";
  }
  for (const std::string& name : MetricNames(rules, families)) {
    EXPECT_EQ(families.count(name), 1u) << name << " (in an annotation) is not exported";
  }
}

}  // namespace
}  // namespace edge
