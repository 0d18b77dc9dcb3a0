/** The Sayswitch adapter's public surface. */
export {
  SayswitchGateway,
  defaultSayswitchPaths,
  declineReason,
  INSUFFICIENT_FUNDS_PHRASES,
  type SayswitchOptions,
} from './client.ts';
export {
  encryptJson,
  decryptJson,
  encryptText,
  decryptText,
  signWebhook,
  verifyWebhookSignature,
  signRequest,
  type PayloadCryptoConfig,
  type PayloadEncoding,
} from './crypto.ts';
export {
  classifyResponse,
  mapTransportError,
  parseRetryAfterMs,
  DEFAULT_RETRY_AFTER_MS,
  TransportFault,
  type CallContext,
  type Operation,
  type ResponseClass,
  type DecodedBody,
} from './error-mapping.ts';
export { parseWebhook, type WebhookEvent, type WebhookStatus } from './webhook.ts';
export * from './schemas.ts';
