/**
 * `keybrake control-plane` and `keybrake data-plane`: read the environment, start, and stop
 * cleanly on SIGINT/SIGTERM. Bad configuration is one line on stderr and exit code 2.
 */
import { format } from 'node:util';

import { setLogger } from '@grpc/grpc-js';
import pino from 'pino';

import { ConfigError } from '../core/config.js';
import { compileControlPlaneConfig } from '../control-plane/config.js';
import { startControlPlane } from '../control-plane/control-plane.js';
import { compileDataPlaneConfig } from '../data-plane/config.js';
import { startDataPlane } from '../data-plane/data-plane.js';

export async function serveControlPlane(): Promise<void> {
  const config = compileOrExit(() => compileControlPlaneConfig(process.env));
  const logger = pino({ level: config.logLevel, base: { service: 'control-plane' } });
  logGrpcThrough(logger);
  const running = await startOrExit(() => startControlPlane(config, logger), 'control plane');
  stopOnSignal(() => running.stop());
}

export async function serveDataPlane(): Promise<void> {
  const config = compileOrExit(() => compileDataPlaneConfig(process.env));
  const logger = pino({ level: config.logLevel, base: { service: 'data-plane', dataplane_id: config.dataplaneId } });
  logGrpcThrough(logger);
  const running = await startOrExit(() => startDataPlane(config, logger), 'data plane');
  stopOnSignal(() => running.stop());
}

/**
 * grpc-js writes its own errors to stderr in a format of its own (`E No address added out of
 * total 1 resolved`, next to our one-line refusal): into the process's log instead, as warnings.
 */
function logGrpcThrough(logger: pino.Logger): void {
  const line = (...args: unknown[]) => logger.warn({ grpc: format(...args) }, 'grpc-js');
  setLogger({ error: line, info: line, debug: line });
}

function compileOrExit<T>(compile: () => T): T {
  try {
    return compile();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`keybrake: configuration error: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

async function startOrExit<T>(start: () => Promise<T>, what: string): Promise<T> {
  try {
    return await start();
  } catch (error) {
    process.stderr.write(`keybrake: ${what} could not start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}

function stopOnSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
