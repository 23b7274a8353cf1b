import {
  Metadata,
  Server,
  ServerCredentials,
  ServerInterceptingCall,
  status,
  type handleUnaryCall,
  type ServerInterceptor,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';

import { OperatorError, type OperatorErrorCode } from '../core/operator-error.js';
import type { Logger } from '../core/logger.js';
import { DataPlaneServiceService, type DataPlaneServiceServer } from '../gen/keybrake/v1/dataplane.js';
import { OperatorServiceService, type OperatorServiceServer } from '../gen/keybrake/v1/operator.js';
import { constantTimeEqual } from './crypto.js';
import type { Caller, OperatorService } from './operator-service.js';

/**
 * The largest request any method takes, checked by grpc-js on a message's 5-byte length prefix,
 * before a byte of its payload is buffered. Sized for IssueKeys: 10,000 specs of typical size
 * (a label, a few endpoints, caps) are 1-4 MiB; 16 MiB leaves room for long labels and lists.
 */
export const MAX_GRPC_REQUEST_BYTES = 16 * 1024 * 1024;
/** Answers: a 10,000-key IssueKeys answer (~4 MiB) and, until snapshots are paged, a data plane's policy snapshot. */
export const MAX_GRPC_RESPONSE_BYTES = 64 * 1024 * 1024;

/**
 * Per method, the largest request it needs, checked before the message is decoded (decoding a
 * message costs CPU on the event loop that serves every other call). Methods not named here
 * take at most DEFAULT_REQUEST_BYTES.
 */
const REQUEST_BYTES_BY_METHOD: Readonly<Record<string, number>> = {
  '/keybrake.v1.OperatorService/IssueKeys': MAX_GRPC_REQUEST_BYTES,
  // A data plane's stream: audit batches of at most 500 bounded records (~1 MiB) are its largest messages.
  '/keybrake.v1.DataPlaneService/Connect': 4 * 1024 * 1024,
};
const DEFAULT_REQUEST_BYTES = 1024 * 1024;

export interface GrpcServerOptions {
  readonly service: OperatorService;
  readonly dataPlaneService: DataPlaneServiceServer;
  /** What data planes present (`Authorization: Bearer …`). */
  readonly dataplaneToken: string;
  readonly logger: Logger;
}

export const SERVICE_NAMES = ['keybrake.v1.OperatorService', 'keybrake.v1.DataPlaneService'] as const;

export function createGrpcServer(options: GrpcServerOptions): { server: Server; health: HealthImplementation } {
  const { service, logger } = options;
  const callers = new WeakMap<Metadata, Caller>();
  const server = new Server({
    'grpc.max_receive_message_length': MAX_GRPC_REQUEST_BYTES,
    'grpc.max_send_message_length': MAX_GRPC_RESPONSE_BYTES,
    interceptors: [
      guardCalls({
        operator: async (metadata) => {
          callers.set(metadata, await service.authenticate(bearerToken(metadata)));
        },
        dataPlane: async (metadata) => {
          if (!constantTimeEqual(bearerToken(metadata) ?? '', options.dataplaneToken)) throw new OperatorError('unauthenticated', 'unknown data-plane token');
        },
        logger,
      }),
    ],
  });

  function unary<Req, Res>(handler: (caller: Caller, request: Req) => Promise<Res>): handleUnaryCall<Req, Res> {
    return (call, callback) => {
      // The interceptor authenticated the call before its message was read.
      const run = async () => handler(callers.get(call.metadata) ?? (await service.authenticate(bearerToken(call.metadata))), call.request);
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
  server.addService(withRequestLimits(OperatorServiceService), implementation);
  server.addService(withRequestLimits(DataPlaneServiceService), options.dataPlaneService);

  const health = new HealthImplementation(Object.fromEntries(['', ...SERVICE_NAMES].map((name) => [name, 'NOT_SERVING' as const])));
  health.addToServer(server);
  return { server, health };
}

/** Listens on `address`; a refusal (the port in use, an address not on this host) names KEYBRAKE_GRPC_ADDR. */
export function bindGrpcServer(server: Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) =>
      error ? reject(new Error(`KEYBRAKE_GRPC_ADDR: cannot listen on ${address} (in use by another process, or not an address of this host)`, { cause: error })) : resolve(port));
  });
}

/**
 * Every call to a Keybrake service is authenticated from its metadata before any message is
 * read: grpc-js leaves the stream paused until the handler starts, so an unauthenticated
 * caller's payload is never buffered or decoded. A request over its method's bound
 * (withRequestLimits) is answered RESOURCE_EXHAUSTED. The health service stays open.
 */
function guardCalls(options: {
  readonly operator: (metadata: Metadata) => Promise<void>;
  readonly dataPlane: (metadata: Metadata) => Promise<void>;
  readonly logger: Logger;
}): ServerInterceptor {
  return (method, call) => {
    const check = method.path.startsWith('/keybrake.v1.OperatorService/')
      ? options.operator
      : method.path.startsWith('/keybrake.v1.DataPlaneService/')
        ? options.dataPlane
        : null;
    const refuse = (code: status, details: string, keybrakeCode: OperatorErrorCode) => {
      const trailers = new Metadata();
      trailers.set('keybrake-error-code', keybrakeCode);
      call.sendStatus({ code, details, metadata: trailers });
    };
    return new ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, proceed) => {
            if (check === null) return proceed(metadata);
            check(metadata).then(
              () => proceed(metadata),
              (reason: unknown) => {
                const error = OperatorError.from(reason);
                if (error.code === 'internal') options.logger.error({ err: reason }, 'gRPC authentication failed');
                refuse(error.grpcStatus, error.rawMessage, error.code);
              },
            );
          },
          onReceiveMessage: (message: unknown, proceed) => {
            if (message instanceof RefusedRequest) return refuse(message.code, message.message, message.keybrakeCode);
            proceed(message);
          },
        });
      },
    });
  };
}

/**
 * The service with each method's request size bounded before decoding (REQUEST_BYTES_BY_METHOD):
 * an oversized or undecodable message is handed on as a RefusedRequest, which guardCalls
 * answers (a deserializer that throws would make grpc-js answer INTERNAL instead).
 */
function withRequestLimits<S extends ServiceDefinition>(definition: S): S {
  const bounded: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    const limit = REQUEST_BYTES_BY_METHOD[method.path] ?? DEFAULT_REQUEST_BYTES;
    const decode = method.requestDeserialize;
    bounded[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        if (bytes.length > limit) return new RefusedRequest(status.RESOURCE_EXHAUSTED, 'payload_too_large', `${method.path} takes requests of at most ${limit} bytes, got ${bytes.length}`);
        try {
          return decode(bytes);
        } catch (error) {
          // A message the generated decoder cannot read (a Timestamp beyond safe integers, bad wire data).
          return new RefusedRequest(status.INVALID_ARGUMENT, 'malformed_request', `request: not a valid ${method.path} message (${error instanceof Error ? error.message : String(error)})`);
        }
      },
    };
  }
  return bounded as S;
}

/** A request refused before its handler sees it: too large to decode, or not decodable. */
class RefusedRequest {
  constructor(
    readonly code: status,
    readonly keybrakeCode: OperatorErrorCode,
    readonly message: string,
  ) {}
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
