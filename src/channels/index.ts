import { AlipayConnector, type AlipayAccountConfig } from './alipay/index.js';
import type { ChannelCode, ChannelConnector, ConnectorDependencies } from './connector.js';

/**
 * The channels module's public surface: the connector interface and its
 * shared helpers, and the registry that builds a connector for a channel
 * account. Only `channels/*` knows a channel's wire format (DESIGN.md §1).
 */
export * from './connector.js';
export type { AlipayAccountConfig } from './alipay/index.js';

/**
 * Each channel's account settings. WeChat Pay and UnionPay add their entries
 * (and factories below) when their connectors land.
 */
export interface ChannelAccountConfigs {
  alipay: AlipayAccountConfig;
}

export type ImplementedChannel = keyof ChannelAccountConfigs & ChannelCode;

type ConnectorFactory<C extends ImplementedChannel> = (config: ChannelAccountConfigs[C], dependencies: ConnectorDependencies) => ChannelConnector;

const connectorFactories: { [C in ImplementedChannel]: ConnectorFactory<C> } = {
  alipay: (config, dependencies) => new AlipayConnector(config, dependencies),
};

export function isImplementedChannel(channel: string): channel is ImplementedChannel {
  return Object.hasOwn(connectorFactories, channel);
}

/** A connector for one channel account; the caller decrypts the account's keys first. */
export function createConnector<C extends ImplementedChannel>(
  channel: C,
  config: ChannelAccountConfigs[C],
  dependencies: ConnectorDependencies,
): ChannelConnector {
  const factory = connectorFactories[channel] as ConnectorFactory<C>;
  return factory(config, dependencies);
}
