import { registerEnumType } from "type-graphql";

/** What kind of number an outbound route reaches (contract §11); stored in lower case. */
export enum CallClass {
  EMERGENCY = "emergency",
  NATIONAL = "national",
  MOBILE = "mobile",
  INTERNATIONAL = "international",
  PREMIUM = "premium",
}
registerEnumType(CallClass, { name: "CallClass" });

export const CALL_CLASSES = Object.values(CallClass);
export const DEFAULT_CALL_CLASSES: readonly CallClass[] = [CallClass.EMERGENCY, CallClass.NATIONAL, CallClass.MOBILE];

/** The classes in a stable order (the enum's), for storage and comparison. */
export function normalizeClasses(classes: readonly CallClass[]): CallClass[] {
  return CALL_CLASSES.filter((c) => classes.includes(c));
}

/** The audit trail's value: null for the default set, else the GraphQL names joined by commas. */
export function classesAuditValue(classes: readonly CallClass[]): string | null {
  const list = normalizeClasses(classes);
  if (list.length === DEFAULT_CALL_CLASSES.length && DEFAULT_CALL_CLASSES.every((c) => list.includes(c))) return null;
  return list.map((c) => c.toUpperCase()).join(",");
}
