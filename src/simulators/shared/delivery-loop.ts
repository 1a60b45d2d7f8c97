import type { Logger } from '../../platform/logging.js';

/**
 * The background half of a simulator's notifier: a timer that runs one pass
 * at a time, because a slow notify URL must not pile passes up. Tests leave it
 * off and call the simulator's deliverDueNotifications() themselves.
 */
export class DeliveryLoop {
  private timer: NodeJS.Timeout | undefined;
  private currentPass: Promise<void> | undefined;
  private kickedDuringPass = false;

  /**
   * @param pass one pass of the channel's background work (delivery, and for WeChat Pay refund completion first)
   * @param failureMessage logged when a pass throws; the loop goes on, as a database hiccup must not stop notifications for good
   */
  constructor(
    private readonly pass: () => Promise<unknown>,
    private readonly logger: Logger,
    private readonly intervalMs: number,
    private readonly failureMessage: string,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.runPass(), this.intervalMs);
    // The loop alone must not keep a process alive that has nothing else to do.
    this.timer.unref();
  }

  /**
   * A notification was just committed: send it now rather than at the next
   * tick, as the real channels do, so notifications follow payments one by
   * one instead of arriving at the merchant in a burst every interval. A kick
   * during a pass runs one more pass right after it. A stopped loop ignores it
   * (tests drive their passes themselves).
   */
  kick(): void {
    if (!this.timer) return;
    if (this.currentPass) {
      this.kickedDuringPass = true;
      return;
    }
    this.runPass();
  }

  private runPass(): void {
    if (this.currentPass) return;
    this.kickedDuringPass = false;
    this.currentPass = this.pass()
      .then(() => undefined)
      .catch((error: unknown) => this.logger.error({ error: (error as Error).message }, this.failureMessage))
      .finally(() => {
        this.currentPass = undefined;
        if (this.kickedDuringPass && this.timer) this.runPass();
      });
  }

  /** Stops the timer and waits for a pass in progress, so the pool can close after it. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.currentPass;
  }
}
