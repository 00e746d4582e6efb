export * from './key-ring.js';
export * from './contexts.js';
export * from './chunked-cipher.js';
export * from './checkpoint-signer.js';
export * from './webhook-signature.js';
