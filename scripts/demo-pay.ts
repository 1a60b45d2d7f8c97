import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { FenClient, verifyWebhook } from '../sdk/index.js';

/**
 * The README walkthrough as a script: with `npm start` running, it creates a
 * payment with the demo app's credentials through the SDK, prints the cashier
 * URL to open and pay in the simulator, then waits for Fen's signed webhook on
 * a local receiver, verifies it, and prints the payment and the merchant's balance.
 */
interface DemoFile {
  api_base: string;
  app_id: string;
  app_secret: string;
  webhook_secret: string;
}

const dataDirectory = process.env.FEN_DATA_DIR ?? '.fen';
const demo = JSON.parse(readFileSync(path.join(dataDirectory, 'demo.json'), 'utf8')) as DemoFile;
const client = new FenClient({ baseUrl: demo.api_base, appId: demo.app_id, appSecret: demo.app_secret });
const amountMinor = Number(process.argv[2] ?? 1234);
const waitMs = 10 * 60 * 1000;

const webhook = new Promise<string>((resolve) => {
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const genuine = verifyWebhook({ payload: body, signatureHeader: String(request.headers['fen-signature']), secret: demo.webhook_secret });
      response.writeHead(genuine ? 200 : 400).end();
      if (genuine) {
        server.close();
        resolve(body);
      }
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (typeof address === 'object' && address) void createPayment(`http://127.0.0.1:${address.port}/webhook`);
  });
});

async function createPayment(notifyUrl: string): Promise<void> {
  const payment = await client.request<{ id: string; cashier_url: string; amount: number }>('POST', '/v1/payments', {
    out_trade_no: `demo-${Date.now()}`,
    amount: amountMinor,
    currency: 'CNY',
    subject: 'Longjing tea 龙井茶',
    method: 'cashier',
    notify_url: notifyUrl,
  });
  process.stdout.write(`Created ${payment.id} for ${(payment.amount / 100).toFixed(2)} CNY.\nOpen the cashier and pay:  ${payment.cashier_url}\nWaiting for the webhook…\n`);
}

const timer = setTimeout(() => {
  process.stderr.write('no webhook within 10 minutes\n');
  process.exit(1);
}, waitMs);
const body = await webhook;
clearTimeout(timer);
const event = JSON.parse(body) as { id: string; type: string; data: { id: string; status: string } };
process.stdout.write(`Webhook received and verified: ${event.type} (${event.id})\n`);
process.stdout.write(`${JSON.stringify(await client.request('GET', `/v1/payments/${event.data.id}`), null, 2)}\n`);
process.stdout.write(`Balance: ${JSON.stringify(await client.request('GET', '/v1/balance'))}\n`);
