import { AlipayConnector, type AlipayAccountConfig } from './alipay/index.js';
import { UnionpayConnector, type UnionpayAccountConfig } from './unionpay/index.js';
import { WechatpayConnector, type WechatpayAccountConfig } from './wechatpay/index.js';
import type { ChannelCode, ChannelConnector, ConnectorDependencies } from './connector.js';

/**
 * The channels module's public surface: the connector interface and its
 * shared helpers, and the registry that builds a connector for a channel
 * account. Only `channels/*` knows a channel's wire format (DESIGN.md §1).
 */
export * from './connector.js';
export type { AlipayAccountConfig } from './alipay/index.js';
export type { WechatpayAccountConfig } from './wechatpay/index.js';
export type { UnionpayAccountConfig } from './unionpay/index.js';

/** Each channel's account settings; a channel is added with an entry here and a factory below. */
export interface ChannelAccountConfigs {
  alipay: AlipayAccountConfig;
  wechatpay: WechatpayAccountConfig;
  unionpay: UnionpayAccountConfig;
}

export type ImplementedChannel = keyof ChannelAccountConfigs & ChannelCode;

type ConnectorFactory<C extends ImplementedChannel> = (config: ChannelAccountConfigs[C], dependencies: ConnectorDependencies) => ChannelConnector;

const connectorFactories: { [C in ImplementedChannel]: ConnectorFactory<C> } = {
  alipay: (config, dependencies) => new AlipayConnector(config, dependencies),
  wechatpay: (config, dependencies) => new WechatpayConnector(config, dependencies),
  unionpay: (config, dependencies) => new UnionpayConnector(config, dependencies),
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
