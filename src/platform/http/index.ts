export { createHttpServer } from './server.js';
export type { HttpServer, HttpServerOptions, RouteHook } from './server.js';
export * from './schemas.js';
export type { AuthenticatedApp, RouteAuth } from './types.js';
