// A throwaway Prometheus server (Debian's `prometheus` package) for tests:
// a generated config scraping the given targets on loopback every second,
// its data in a temporary directory, and PromQL over its HTTP API.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { collectOutput, waitFor } from './proxy-helpers.js';
import { freePort } from './redis-server.js';

/**
 * @param {{job: string, target: string, path?: string, bearer?: string}[]} scrapes
 * @returns {Promise<{url: string, query(promql: string): Promise<object[]>, stop(): Promise<void>}>}
 */
export async function startPrometheus(scrapes) {
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-prometheus-'));
  const config = ['global:', '  scrape_interval: 1s', '  scrape_timeout: 1s', 'scrape_configs:'];
  for (const { job, target, path = '/metrics', bearer } of scrapes) {
    config.push(`  - job_name: ${JSON.stringify(job)}`, `    metrics_path: ${JSON.stringify(path)}`);
    if (bearer) config.push('    authorization:', '      type: Bearer', `      credentials: ${JSON.stringify(bearer)}`);
    config.push('    static_configs:', `      - targets: [${JSON.stringify(target)}]`);
  }
  const configPath = join(dir, 'prometheus.yml');
  await writeFile(configPath, `${config.join('\n')}\n`);
  let output = '';
  // Prometheus takes its port from the command line (it does not print the
  // port :0 gave it), so the port is picked here: if another process took it
  // in between, the server exits saying so and another is tried.
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const port = await freePort();
    const child = spawn('prometheus', [`--config.file=${configPath}`, `--storage.tsdb.path=${join(dir, `data-${attempt}`)}`,
      `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const stderr = collectOutput(child.stderr);
    const exited = once(child, 'exit');
    const url = `http://127.0.0.1:${port}`;
    let alive = true;
    exited.then(() => { alive = false; });
    const ready = await waitFor(async () => {
      if (!alive) return 'exited';
      const response = await fetch(`${url}/-/ready`).catch(() => null);
      return response?.ok ? 'ready' : null;
    }, 'Prometheus ready', { interval: 50 });
    output = stderr.text;
    if (ready === 'ready') {
      return {
        url,
        async query(promql) {
          const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
          const body = await response.json();
          if (body.status !== 'success') throw new Error(`PromQL ${promql} failed: ${JSON.stringify(body)}`);
          return body.data.result;
        },
        async stop() {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM');
            await exited;
          }
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    await exited;
    if (!/address already in use/i.test(output)) break;
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`prometheus did not start: ${output}`);
}
