export * from './key-ring.js';
export * from './contexts.js';
