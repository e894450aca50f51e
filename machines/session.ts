// The session's modules live in ./session/; this keeps `machines/session.js` importers working.
export * from './session/index.js';
