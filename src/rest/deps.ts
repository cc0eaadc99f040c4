import type { ContextDeps } from "../context/build-context";
import type { AppConfig } from "../config/config";

export interface RestDeps extends ContextDeps {
  config: AppConfig;
}
