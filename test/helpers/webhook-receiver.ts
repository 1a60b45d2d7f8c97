import { createServer, type Server } from 'node:http';
import { verifyWebhook } from '../../sdk/index.js';

/**
 * A merchant's webhook endpoint on 127.0.0.1: it records every delivery and
 * answers with whatever status the test sets (to play an endpoint that is down).
 */
export interface ReceivedWebhook {
  eventId: string;
  type: string;
  signature: string;
  body: string;
  parsed: { id: string; type: string; data: Record<string, unknown> };
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  respondWith(status: number): void;
  /** Every received webhook verified with the SDK and the app's webhook secret. */
  verifiedWith(secret: string, now: Date): ReceivedWebhook[];
  ofType(type: string): ReceivedWebhook[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  let status = 200;
  const server: Server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      if (status >= 200 && status < 300) {
        const parsed = JSON.parse(body) as ReceivedWebhook['parsed'];
        received.push({ eventId: String(request.headers['fen-event-id']), type: String(request.headers['fen-event-type']), signature: String(request.headers['fen-signature']), body, parsed });
      }
      response.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'down');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('receiver has no address');
  return {
    url: `http://127.0.0.1:${address.port}/webhooks`,
    received,
    respondWith: (next) => {
      status = next;
    },
    verifiedWith: (secret, now) => received.filter((item) => verifyWebhook({ payload: item.body, signatureHeader: item.signature, secret, now })),
    ofType: (type) => received.filter((item) => item.type === type),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
