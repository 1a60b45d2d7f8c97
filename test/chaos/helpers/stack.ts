import { deployFen, type FenDeployment } from './fen.js';
import { startChaosPostgres, type ChaosPostgres } from './postgres.js';
import { setUpWorld, type ChaosWorld } from './world.js';

/**
 * The usual chaos stage: a PostgreSQL of the test's own, Fen as `fen api` +
 * `fen worker` + `fen sim` on it, and a merchant app on the simulator whose
 * webhooks reach a receiver in the test process. Closing keeps the files
 * (logs, acknowledgements, the database) when the test failed.
 */
export interface ChaosStack {
  postgres: ChaosPostgres;
  deployment: FenDeployment;
  world: ChaosWorld;
  close(options: { passed: boolean }): Promise<void>;
}

export async function startChaosStack(label: string): Promise<ChaosStack> {
  const postgres = await startChaosPostgres(label);
  const deployment = await deployFen({ databaseUrl: postgres.url, directory: postgres.directory });
  // The API first: it brings the schema up to date, so the others start on a migrated database.
  await deployment.start('api');
  await Promise.all([deployment.start('sim'), deployment.start('worker')]);
  const world = await setUpWorld(deployment);
  return {
    postgres,
    deployment,
    world,
    close: async ({ passed }) => {
      await deployment.stopAll();
      await world.close();
      await postgres.close({ keepFiles: !passed });
    },
  };
}
