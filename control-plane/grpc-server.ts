import { Metadata, Server, ServerCredentials, type handleUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';

import { OperatorError } from '../core/operator-error.js';
import type { Logger } from '../core/logger.js';
import { DataPlaneServiceService, type DataPlaneServiceServer } from '../gen/keybrake/v1/dataplane.js';
import { OperatorServiceService, type OperatorServiceServer } from '../gen/keybrake/v1/operator.js';
import type { Caller, OperatorService } from './operator-service.js';

/** Batch issuance of 10,000 keys is one message of a few MiB: above grpc-js's 4 MiB default. */
export const MAX_GRPC_MESSAGE_BYTES = 64 * 1024 * 1024;

export interface GrpcServerOptions {
  readonly service: OperatorService;
  readonly dataPlaneService: DataPlaneServiceServer;
  readonly logger: Logger;
}

export const SERVICE_NAMES = ['keybrake.v1.OperatorService', 'keybrake.v1.DataPlaneService'] as const;

export function createGrpcServer(options: GrpcServerOptions): { server: Server; health: HealthImplementation } {
  const { service, logger } = options;
  const server = new Server({
    'grpc.max_receive_message_length': MAX_GRPC_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_GRPC_MESSAGE_BYTES,
  });

  function unary<Req, Res>(handler: (caller: Caller, request: Req) => Promise<Res>): handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const run = async () => handler(await service.authenticate(bearerToken(call.metadata)), call.request);
      run().then(
        (response) => callback(null, response),
        (reason: unknown) => callback(toServiceError(reason, logger)),
      );
    };
  }

  const implementation: OperatorServiceServer = {
    issueKey: unary((caller, request) => service.issueKey(caller, request)),
    issueKeys: unary((caller, request) => service.issueKeys(caller, request)),
    getKey: unary((caller, request) => service.getKey(caller, request)),
    listKeys: unary((caller, request) => service.listKeys(caller, request)),
    revokeKey: unary((caller, request) => service.revokeKey(caller, request)),
    deleteKey: unary((caller, request) => service.deleteKey(caller, request)),
    setVendorCredential: unary((caller, request) => service.setVendorCredential(caller, request)),
    createToken: unary((caller, request) => service.createToken(caller, request)),
    listTokens: unary((caller) => service.listTokens(caller)),
    revokeToken: unary((caller, request) => service.revokeToken(caller, request)),
    queryAudit: unary((caller, request) => service.queryAudit(caller, request)),
  };
  server.addService(OperatorServiceService, implementation);
  server.addService(DataPlaneServiceService, options.dataPlaneService);

  const health = new HealthImplementation(Object.fromEntries(['', ...SERVICE_NAMES].map((name) => [name, 'NOT_SERVING' as const])));
  health.addToServer(server);
  return { server, health };
}

export function bindGrpcServer(server: Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port)));
  });
}

function bearerToken(metadata: Metadata): string | undefined {
  const [value] = metadata.get('authorization');
  if (typeof value !== 'string') return undefined;
  return value.startsWith('Bearer ') ? value.slice('Bearer '.length).trim() : undefined;
}

function toServiceError(reason: unknown, logger: Logger): Partial<ServiceError> {
  const error = OperatorError.from(reason);
  if (error.code === 'internal') logger.error({ err: reason }, 'operator call failed');
  const metadata = new Metadata();
  metadata.set('keybrake-error-code', error.code);
  return { code: error.grpcStatus, details: error.rawMessage, metadata };
}
