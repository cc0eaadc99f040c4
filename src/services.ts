import type { DataSource } from "typeorm";
import type { AppConfig } from "./config/config";
import type { SecretBox } from "./common/secret-box";
import { ApiKeyService } from "./modules/api-key/api-key.service";
import { ExtensionService } from "./modules/extension/extension.service";
import { TenantService } from "./modules/tenant/tenant.service";

/** The service layer: every business rule lives here, shared by GraphQL, REST and ingestion. */
export interface Services {
  tenants: TenantService;
  extensions: ExtensionService;
  apiKeys: ApiKeyService;
}

export function createServices(deps: { dataSource: DataSource; config: AppConfig; secretBox: SecretBox }): Services {
  const tenants = new TenantService();
  return {
    tenants,
    extensions: new ExtensionService(tenants, deps.secretBox),
    apiKeys: new ApiKeyService(deps.dataSource, deps.config.adminApiKey),
  };
}
