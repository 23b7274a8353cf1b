/**
 * A promise-based OperatorService client: what the CLI, benchmarks and tests use.
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';

import {
  OperatorServiceClient,
  type CreateTokenRequest,
  type CreateTokenResponse,
  type ListTokensRequest,
  type ListTokensResponse,
  type RevokeTokenRequest,
  type RevokeTokenResponse,
  type DeleteKeyRequest,
  type DeleteKeyResponse,
  type GetKeyRequest,
  type GetKeyResponse,
  type IssueKeyRequest,
  type IssueKeyResponse,
  type IssueKeysRequest,
  type IssueKeysResponse,
  type ListKeysRequest,
  type ListKeysResponse,
  type QueryAuditRequest,
  type QueryAuditResponse,
  type RevokeKeyRequest,
  type RevokeKeyResponse,
  type SetVendorCredentialRequest,
  type SetVendorCredentialResponse,
} from '../gen/keybrake/v1/operator.js';

const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export interface OperatorClient {
  issueKey(request: IssueKeyRequest): Promise<IssueKeyResponse>;
  issueKeys(request: IssueKeysRequest): Promise<IssueKeysResponse>;
  getKey(request: GetKeyRequest): Promise<GetKeyResponse>;
  listKeys(request: ListKeysRequest): Promise<ListKeysResponse>;
  revokeKey(request: RevokeKeyRequest): Promise<RevokeKeyResponse>;
  deleteKey(request: DeleteKeyRequest): Promise<DeleteKeyResponse>;
  setVendorCredential(request: SetVendorCredentialRequest): Promise<SetVendorCredentialResponse>;
  createToken(request: CreateTokenRequest): Promise<CreateTokenResponse>;
  listTokens(request: ListTokensRequest): Promise<ListTokensResponse>;
  revokeToken(request: RevokeTokenRequest): Promise<RevokeTokenResponse>;
  queryAudit(request: QueryAuditRequest): Promise<QueryAuditResponse>;
  close(): void;
}

export function createOperatorClient(address: string, token: string | undefined): OperatorClient {
  const client = new OperatorServiceClient(address, credentials.createInsecure(), {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  const call = <Res>(invoke: (callback: (error: ServiceError | null, response: Res) => void) => unknown) =>
    new Promise<Res>((resolve, reject) => {
      invoke((error, response) => (error ? reject(error) : resolve(response)));
    });
  return {
    issueKey: (r) => call((cb) => client.issueKey(r, metadata, cb)),
    issueKeys: (r) => call((cb) => client.issueKeys(r, metadata, cb)),
    getKey: (r) => call((cb) => client.getKey(r, metadata, cb)),
    listKeys: (r) => call((cb) => client.listKeys(r, metadata, cb)),
    revokeKey: (r) => call((cb) => client.revokeKey(r, metadata, cb)),
    deleteKey: (r) => call((cb) => client.deleteKey(r, metadata, cb)),
    setVendorCredential: (r) => call((cb) => client.setVendorCredential(r, metadata, cb)),
    createToken: (r) => call((cb) => client.createToken(r, metadata, cb)),
    listTokens: (r) => call((cb) => client.listTokens(r, metadata, cb)),
    revokeToken: (r) => call((cb) => client.revokeToken(r, metadata, cb)),
    queryAudit: (r) => call((cb) => client.queryAudit(r, metadata, cb)),
    close: () => client.close(),
  };
}
