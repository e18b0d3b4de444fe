import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig, type Config } from '../../src/config.ts';
import { createLogger, type Logger } from '../../src/log.ts';

/** Builds a validated Config from YAML text, as the service would at boot. */
export function configFrom(yaml: string, env: NodeJS.ProcessEnv = {}): Config {
  return parseConfig(yaml, '/test/housekeeper.yml', env);
}

/** Writes YAML to a fresh temp file and returns its path. */
export function writeConfigFile(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hk-config-'));
  const file = join(dir, 'housekeeper.yml');
  writeFileSync(file, yaml);
  return file;
}

/** A logger that keeps every line in memory, so tests can read what was logged. */
export function memoryLogger(level: 'debug' | 'info' = 'debug'): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  return { log: createLogger(level, sink), lines };
}
