import { mkdtempSync, rmSync } from 'node:fs';
import { chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { connectDatabase, migrateToLatest, startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/platform/db/index.js';

/**
 * One PostgreSQL server for the whole run: the machine's (DATABASE_URL) or an
 * embedded one in a temporary folder. The schema is migrated once into a
 * template database; every test file then gets its own copy (CREATE DATABASE …
 * TEMPLATE), so files run in parallel without seeing each other's rows.
 */
declare module 'vitest' {
  export interface ProvidedContext {
    databaseServerUrl: string;
    templateDatabase: string;
  }
}

let embedded: EmbeddedDatabase | undefined;
let created: { serverUrl: string; templateDatabase: string } | undefined;
let temporaryDirectory: string | undefined;

async function adminQuery(serverUrl: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

export async function setup(project: TestProject): Promise<void> {
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    temporaryDirectory = mkdtempSync(path.join(os.tmpdir(), 'fen-test-'));
    chmodSync(temporaryDirectory, 0o755);
    embedded = await startEmbeddedPostgres({ dataDirectory: temporaryDirectory });
    serverUrl = embedded.url;
  }
  const templateDatabase = `fen_template_${process.pid}_${Date.now().toString(36)}`;
  await adminQuery(serverUrl, `CREATE DATABASE ${templateDatabase}`);
  const templateUrl = new URL(serverUrl);
  templateUrl.pathname = `/${templateDatabase}`;
  const handle = connectDatabase(templateUrl.toString(), 2);
  try {
    await migrateToLatest(handle.db, templateUrl.toString());
  } finally {
    await handle.close();
  }
  created = { serverUrl, templateDatabase };
  project.provide('databaseServerUrl', serverUrl);
  project.provide('templateDatabase', templateDatabase);
}

export async function teardown(): Promise<void> {
  if (created && !embedded) await adminQuery(created.serverUrl, `DROP DATABASE IF EXISTS ${created.templateDatabase} WITH (FORCE)`);
  if (embedded) await embedded.stop();
  if (temporaryDirectory) rmSync(temporaryDirectory, { recursive: true, force: true });
}
