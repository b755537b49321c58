#include "cli/completion.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include <vector>

namespace cortex::cli {
namespace {

// One visible command: its path below the root (" cluster up") and the words that may follow.
struct Node {
  std::string path;
  std::vector<std::string> words;
};

void Collect(const CLI::App& app, const std::string& path, std::vector<Node>& nodes) {
  Node node{path, {}};
  std::vector<const CLI::App*> children =
      app.get_subcommands([](const CLI::App* sub) { return !sub->get_group().empty(); });
  for (const CLI::App* sub : children) node.words.push_back(sub->get_name());
  for (const CLI::Option* option : app.get_options()) {
    if (option->get_group().empty()) continue;  // hidden
    for (const std::string& name : option->get_lnames()) node.words.push_back("--" + name);
    for (const std::string& name : option->get_snames()) node.words.push_back("-" + name);
  }
  nodes.push_back(std::move(node));
  for (const CLI::App* sub : children)
    Collect(*sub, absl::StrCat(path, " ", sub->get_name()), nodes);
}

std::string BashScript(const CLI::App& app) {
  std::vector<Node> nodes;
  Collect(app, "", nodes);
  std::vector<std::string> paths;
  for (const Node& node : nodes) {
    if (!node.path.empty()) paths.push_back(absl::StrCat("\"", node.path, "\""));
  }
  std::string cases;
  for (const Node& node : nodes) {
    absl::StrAppend(&cases, "    \"", node.path, "\") words=\"", absl::StrJoin(node.words, " "),
                    "\" ;;\n");
  }
  return absl::StrCat(
      "# cortex completion (bash). Load it with: source <(cortex completion bash)\n"
      "_cortex() {\n"
      "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" path=\"\" words=\"\" i\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    case \"$path ${COMP_WORDS[i]}\" in\n"
      "      ",
      absl::StrJoin(paths, "|"),
      ") path=\"$path ${COMP_WORDS[i]}\" ;;\n"
      "    esac\n"
      "  done\n"
      "  case \"$path\" in\n",
      cases,
      "  esac\n"
      "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
      "}\n"
      "complete -o default -F _cortex cortex\n"
      "complete -o default -F _cortex cx\n"
      "alias cx=cortex\n");
}

}  // namespace

absl::StatusOr<std::string> CompletionScript(const CLI::App& app, std::string_view shell) {
  if (shell == "bash") return BashScript(app);
  if (shell == "zsh") {
    // zsh runs the same function through its bash completion layer.
    return absl::StrCat(
        "# cortex completion (zsh). Load it with: source <(cortex completion zsh)\n"
        "autoload -U +X compinit && compinit\n"
        "autoload -U +X bashcompinit && bashcompinit\n",
        BashScript(app));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported shell \"", std::string(shell), "\": use bash or zsh"));
}

}  // namespace cortex::cli
