// shmq completion: a bash completion script made from the command line's own
// definition (CLI11 2.1 generates none), so it never falls behind the options. Channel
// names complete from /dev/shm.   source <(shmq completion)
#include <cstdio>
#include <string>

#include "commands.hpp"

namespace shmq_cli {

namespace {

// The long options of a subcommand, its option groups' included (their --help is the
// subcommand's).
std::string long_options(const CLI::App& cmd, bool group = false) {
  std::string out;
  for (const CLI::Option* o : cmd.get_options({}))
    for (const std::string& name : o->get_lnames())
      if (!group || name != "help") out += " --" + name;
  for (const CLI::App* g : cmd.get_subcommands({}))
    if (g->get_name().empty()) out += long_options(*g, true);
  return out;
}

std::string script(const CLI::App& app) {
  std::string commands, cases;
  for (const CLI::App* cmd : app.get_subcommands({})) {
    if (cmd->get_name().empty()) continue;
    commands += " " + cmd->get_name();
    cases += "    " + cmd->get_name() + ") opts=\"" + long_options(*cmd).substr(1) + "\" ;;\n";
  }
  return "# bash completion for shmq: source <(shmq completion)\n"
         "_shmq() {\n"
         "  local cur=${COMP_WORDS[COMP_CWORD]} opts\n"
         "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
         "    COMPREPLY=($(compgen -W \"" + commands.substr(1) + " --help --version\" -- \"$cur\"))\n"
         "    return\n"
         "  fi\n"
         "  case ${COMP_WORDS[1]} in\n" + cases +
         "    *) opts=\"\" ;;\n"
         "  esac\n"
         "  if [[ $cur == -* ]]; then\n"
         "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
         "  else\n"
         "    COMPREPLY=($(compgen -W \"$(ls /dev/shm 2>/dev/null | sed -n 's/^shmq\\.//p')\" -- \"$cur\"))\n"
         "  fi\n"
         "}\n"
         "complete -F _shmq shmq\n";
}

}  // namespace

void add_completion_command(CLI::App& app, runner& run) {
  CLI::App* cmd = app.add_subcommand("completion", "print a bash completion script: source <(shmq completion)");
  cmd->callback([&app, &run] {
    run = [&app] {
      std::fputs(script(app).c_str(), stdout);
      return 0;
    };
  });
}

}  // namespace shmq_cli
