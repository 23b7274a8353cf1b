/** Which code a benchmark ran: the commit, and whether the planes had uncommitted changes. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export function codeVersion(): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  if (head.status !== 0) return 'commit unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'data-plane', 'control-plane', 'core', 'gen'], { cwd: ROOT, encoding: 'utf8' });
  const changed = new Set(
    (dirty.stdout ?? '')
      .split('\n')
      .filter((line) => line.length > 3)
      .map((line) => line.slice(3).split('/')[0]),
  );
  return `commit ${head.stdout.trim()}${changed.size === 0 ? '' : ` + uncommitted changes in ${[...changed].sort().join('/, ')}/`}`;
}
