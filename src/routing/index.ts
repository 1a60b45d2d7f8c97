export {
  createChannelAccount,
  getChannelAccount,
  setChannelAccountStatus,
  setPaymentRoute,
  chooseChannelAccount,
  recordChannelCall,
  connectorFor,
} from './routing.service.js';
export type { ChannelAccountRow, CreateChannelAccountInput } from './routing.service.js';
export { channelSettingsSchemas, connectorConfig } from './channel-settings.js';
export { registerRoutingRoutes } from './routing.routes.js';
