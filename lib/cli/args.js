// What every subcommand does with its command line, in one place: parse it,
// print the command's usage on --help (to stdout, exit 0), and report a usage
// error (exit 2). Two kinds of error, each reported as it always was:
//   - a UsageError (the command's own parser found the arguments wrong):
//     "toolgate: COMMAND: WHY" and "Run "toolgate COMMAND --help" for usage."
//   - node:util parseArgs' own (an unknown option, a missing value): the usage
//     text on stderr, then parseArgs' message.
import { parseArgs } from 'node:util';

/** A command line that cannot work; the message says why. */
export class UsageError extends Error {
  name = 'UsageError';
}

/** A strict node:util parseArgs for these options: args => {values, positionals, help}. */
export function optionParser(options, { positionals = false } = {}) {
  return (args) => {
    const parsed = parseArgs({ args, options, strict: true, allowPositionals: positionals });
    return { ...parsed, help: parsed.values.help === true };
  };
}

/**
 * Parses a command's arguments with `parse` (which returns an object with
 * `help: true` for --help). Returns what it parsed, or null when the command
 * has nothing more to do: its usage was printed (--help), or a usage error was
 * reported through `fail` with exit code 2.
 */
export function commandLine(args, { command, usage, parse, fail }) {
  let parsed;
  try {
    parsed = parse(args);
  } catch (error) {
    if (error instanceof UsageError) {
      fail(`${command}: ${error.message}\nRun "toolgate ${command} --help" for usage.`, 2);
      return null;
    }
    if (typeof error?.code === 'string' && error.code.startsWith('ERR_PARSE_ARGS_')) {
      process.stderr.write(usage);
      fail(error.message, 2);
      return null;
    }
    throw error;
  }
  if (parsed.help) {
    process.stdout.write(usage);
    return null;
  }
  return parsed;
}
