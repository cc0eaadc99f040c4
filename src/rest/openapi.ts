import { MAX_PAGE_SIZE } from "../graphql/connection";
import { DEFAULT_PER_PAGE } from "../modules/extension/extension.service";
import { EXPORT_COLUMNS, IMPORT_COLUMNS, IMPORT_MAX_ROWS } from "../modules/extension/extension-import";

const json = (schema: object) => ({ "application/json": { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const response = (name: string) => ({ $ref: `#/components/responses/${name}` });

const extensionFields = {
  tenant_id: { type: "integer", minimum: 1, description: "The tenant; a tenant the key cannot see is refused like a missing one (422)." },
  extension_number: { type: "string", pattern: "^[0-9]{1,20}$", description: "Digits only, 1 to 20; unique inside the tenant." },
  display_name: { type: ["string", "null"], maxLength: 255 },
  email: { type: ["string", "null"], format: "email", maxLength: 255 },
  secret: { type: "string", minLength: 8, maxLength: 128, writeOnly: true, description: "SIP password. Write-only: never returned." },
  status: { type: ["string", "null"], enum: ["active", "disabled", null], description: "Default active." },
  voicemail_enabled: { type: ["boolean", "null"], description: "Default false." },
};

/**
 * The REST adapter's OpenAPI 3.1 description (served at GET /api/openapi.json). Written by hand
 * next to the routes it describes; the e2e tests validate it and check every response against it.
 */
export const OPENAPI_DOCUMENT = {
  openapi: "3.1.0",
  info: {
    title: "PBX control plane — REST compatibility API",
    version: "1.0.0",
    description:
      "Laravel API-resource conventions: a `data` wrapper, snake_case fields, integer ids, `links`/`meta` pagination, " +
      "422 with `errors` per field, 404 with `message`. Every request except this document carries `Authorization: Bearer <api key>`. " +
      "A write that committed answers `x-pbx-write-lsn` (on PostgreSQL); a read that sends it back as `x-pbx-read-after` sees that write " +
      "(with a read replica; a malformed value is 400). While the database is unreachable any request answers 503 with `Retry-After`.",
  },
  servers: [{ url: "/" }],
  security: [{ bearer: [] }],
  tags: [
    { name: "extensions", description: "SIP endpoints of a tenant." },
    { name: "engine", description: "What a SIP engine reads: digest credentials of active extensions." },
    { name: "voicemail", description: "Voicemail messages of extensions and their audio; an extension's greeting." },
    { name: "call handling", description: "An extension's do-not-disturb, ring time and forwards (contract §12)." },
  ],
  paths: {
    "/api/openapi.json": {
      get: {
        operationId: "getOpenApiDocument",
        summary: "This document.",
        security: [],
        responses: { "200": { description: "The OpenAPI document.", content: json({ type: "object", required: ["openapi", "paths"] }) } },
      },
    },
    "/api/extensions": {
      get: {
        operationId: "listExtensions",
        tags: ["extensions"],
        summary: "A page of extensions, ordered by id.",
        description:
          "Tenant keys see their own tenant only (`tenant_id` may be omitted); an ADMIN key without `tenant_id` lists every tenant. " +
          "Another tenant's id, or one that does not exist, is a 422 on `tenant_id`. Requires ADMIN, TENANT_ADMIN or VIEWER.",
        parameters: [
          { name: "search", in: "query", schema: { type: "string" }, description: "Case-insensitive match on number, display name or email." },
          { name: "tenant_id", in: "query", schema: { type: "integer", minimum: 1 } },
          { name: "status", in: "query", schema: { type: "string", enum: ["active", "disabled"] } },
          { name: "page", in: "query", schema: { type: "integer", minimum: 1, default: 1 } },
          { name: "per_page", in: "query", schema: { type: "integer", minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PER_PAGE } },
        ],
        responses: {
          "200": { description: "One page.", content: json(ref("ExtensionCollection")) },
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "422": response("ValidationFailed"),
          "500": response("ServerError"),
        },
      },
      post: {
        operationId: "createExtension",
        tags: ["extensions"],
        summary: "Creates an extension.",
        description:
          "A taken number and a tenant at its `max_extensions` are 422 (`errors.extension_number`, `errors.tenant_id`). Requires ADMIN or TENANT_ADMIN.",
        requestBody: { required: true, content: json(ref("ExtensionCreate")) },
        responses: {
          "201": {
            description: "Created.",
            headers: { Location: { schema: { type: "string" }, description: "The new extension's URL." } },
            content: json(ref("ExtensionResource")),
          },
          "400": response("BadRequest"),
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "413": response("PayloadTooLarge"),
          "415": response("UnsupportedMediaType"),
          "422": response("ValidationFailed"),
          "500": response("ServerError"),
        },
      },
    },
    "/api/extensions/import": {
      post: {
        operationId: "importExtensions",
        tags: ["extensions"],
        summary: `Creates (or, with mode=upsert, updates) up to ${IMPORT_MAX_ROWS} extensions from one file, all or nothing.`,
        description:
          `The body is \`text/csv\` (a header line naming the columns, in any order: ${IMPORT_COLUMNS.join(", ")}; RFC 4180 quoting, ` +
          "optional UTF-8 BOM, CRLF or LF; an empty cell leaves a column unset, or clears display_name and email) or a JSON array of objects " +
          "with the same names. `id`, `tenant_id`, `created_at` and `updated_at` columns are ignored (a saved answer may be sent back). " +
          "Every row is judged by the rules of a single create (a new number) or update (an existing number, with mode=upsert); the numbers " +
          "of the file against each other; and the tenant's max_extensions for the whole file. If any row fails nothing is written and the " +
          "answer is 422 with the result, naming every failing line (CSV: the header is line 1; JSON: elements count from 1). " +
          "With dry_run nothing is written either way. The body limit is IMPORT_BODY_LIMIT_BYTES (default 8 MiB), not BODY_LIMIT_BYTES; " +
          "a CSV body is parsed as it arrives. Requires ADMIN or TENANT_ADMIN.",
        parameters: [
          { name: "tenant_id", in: "query", schema: { type: "integer", minimum: 1 }, description: "Required for an ADMIN key; tenant keys may omit it." },
          { name: "dry_run", in: "query", schema: { type: "boolean", default: false }, description: "true/1: judge the file, write nothing." },
          { name: "mode", in: "query", schema: { type: "string", enum: ["create", "upsert"], default: "create" } },
        ],
        requestBody: {
          required: true,
          content: {
            "text/csv": { schema: { type: "string" } },
            "application/json": { schema: { type: "array", maxItems: IMPORT_MAX_ROWS, items: { type: "object", properties: extensionFields } } },
          },
        },
        responses: {
          "200": { description: "Every row passed (and, unless dry_run, was written).", content: json(ref("ImportResultResource")) },
          "400": response("BadRequest"),
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "413": response("PayloadTooLarge"),
          "415": { description: "A body that is neither text/csv nor application/json.", content: json(ref("Message")) },
          "422": {
            description: "A row failed (`data` is the result, nothing was written), or the request itself is invalid (`errors`: tenant_id, mode, dry_run, data).",
            content: json({ oneOf: [ref("ImportRefused"), ref("ValidationError")] }),
          },
          "500": response("ServerError"),
        },
      },
    },
    "/api/extensions/export": {
      get: {
        operationId: "exportExtensions",
        tags: ["extensions"],
        summary: "The tenant's extensions as CSV, in the import's columns, never the secret.",
        description:
          `Columns: ${EXPORT_COLUMNS.join(", ")}; ordered by id; streamed. Edit it and send it back to POST /api/extensions/import?mode=upsert. ` +
          "Requires ADMIN (with tenant_id), TENANT_ADMIN or VIEWER.",
        parameters: [{ name: "tenant_id", in: "query", schema: { type: "integer", minimum: 1 } }],
        responses: {
          "200": { description: "The CSV file.", content: { "text/csv": { schema: { type: "string" } } } },
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "422": response("ValidationFailed"),
          "500": response("ServerError"),
        },
      },
    },
    "/api/extensions/{id}": {
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "integer", minimum: 1 } }],
      get: {
        operationId: "getExtension",
        tags: ["extensions"],
        summary: "One extension.",
        responses: {
          "200": { description: "The extension.", content: json(ref("ExtensionResource")) },
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "500": response("ServerError"),
        },
      },
      put: {
        operationId: "replaceExtension",
        tags: ["extensions"],
        summary: "Replaces the whole extension.",
        description:
          "`tenant_id` and `extension_number` are required; `tenant_id` must be the extension's own (an extension never changes tenant). " +
          "An absent `secret` keeps the current one; other absent fields take their create defaults " +
          "(`display_name` and `email` null, `status` active, `voicemail_enabled` false).",
        requestBody: { required: true, content: json(ref("ExtensionReplace")) },
        responses: {
          "200": { description: "The replaced extension.", content: json(ref("ExtensionResource")) },
          "400": response("BadRequest"),
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "413": response("PayloadTooLarge"),
          "415": response("UnsupportedMediaType"),
          "422": response("ValidationFailed"),
          "500": response("ServerError"),
        },
      },
      patch: {
        operationId: "updateExtension",
        tags: ["extensions"],
        summary: "Changes the given fields only.",
        description: "Absent fields are kept; `null` clears `display_name` or `email`. A `tenant_id`, if sent, must be the extension's own.",
        requestBody: { required: true, content: json(ref("ExtensionPatch")) },
        responses: {
          "200": { description: "The changed extension.", content: json(ref("ExtensionResource")) },
          "400": response("BadRequest"),
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "413": response("PayloadTooLarge"),
          "415": response("UnsupportedMediaType"),
          "422": response("ValidationFailed"),
          "500": response("ServerError"),
        },
      },
      delete: {
        operationId: "deleteExtension",
        tags: ["extensions"],
        summary: "Deletes an extension.",
        description:
          "Refused with 409 while the extension is an agent of a queue, naming the queues, unless `force=true`, which removes it " +
          "from those queues in the same transaction. Its devices go with it; its call records stay.",
        parameters: [{ name: "force", in: "query", schema: { type: "boolean", default: false }, description: "true/1 or false/0." }],
        responses: {
          "204": { description: "Deleted." },
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "409": { description: "Still a queue agent.", content: json(ref("QueueConflict")) },
          "422": response("ValidationFailed"),
          "500": response("ServerError"),
        },
      },
    },
    "/api/engine/credentials": {
      get: {
        operationId: "getEngineCredentials",
        tags: ["engine"],
        summary: "The digest credentials of one active extension, for a SIP engine.",
        description:
          "The row of the `sip_subscriber` view whose `domain` (the tenant's SIP domain, compared lower-case) and `username` (the extension " +
          "number) match. A disabled or deleted extension is not found. Requires INGEST or ADMIN; an INGEST key bound to a tenant gets 404 for " +
          "every other tenant's domain. The digests are password-equivalent: keep the answer out of logs and caches.",
        parameters: [
          { name: "domain", in: "query", required: true, schema: { type: "string", minLength: 1 }, description: "The tenant's SIP domain (the digest realm)." },
          { name: "username", in: "query", required: true, schema: { type: "string", minLength: 1 }, description: "The extension number." },
        ],
        responses: {
          "200": { description: "The credentials.", content: json(ref("EngineCredentialsResource")) },
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "422": response("ValidationFailed"),
          "500": response("ServerError"),
        },
      },
    },
    "/api/voicemail": {
      post: {
        operationId: "depositVoicemail",
        tags: ["voicemail"],
        summary: "The SIP engine hands over a voicemail message with its audio.",
        description:
          "INGEST (platform-wide, or bound to the message's tenant) or ADMIN key. `multipart/form-data`: the tenant by `domain` or `tenant_id`, " +
          "the `extension` by number, the engine's `message_id` (unique per extension) and one file part `audio` (audio/wav, audio/x-wav, " +
          "audio/ogg or audio/mpeg, checked against the file's first bytes; at most VOICEMAIL_MAX_BYTES, default 10 MiB). " +
          "201 for a new message; the same `message_id` again answers 200 with the message already stored, changing nothing. " +
          "Refused with 422 naming the field, storing nothing: an unknown tenant (`domain`/`tenant_id`) or extension, an extension " +
          "without voicemail or with a full mailbox (VOICEMAIL_MAX_MESSAGES, default 100) (`extension`), a missing, empty, unlisted " +
          "or mislabelled audio (`audio`), an invalid field.",
        requestBody: {
          required: true,
          content: {
            "multipart/form-data": {
              schema: {
                type: "object",
                required: ["extension", "message_id", "audio"],
                properties: {
                  domain: { type: "string", description: "The tenant's SIP domain (or send tenant_id)." },
                  tenant_id: { type: "integer", minimum: 1 },
                  extension: { type: "string", pattern: "^[0-9]{1,20}$" },
                  message_id: { type: "string", minLength: 1, maxLength: 255 },
                  call_id: { type: "string", maxLength: 255 },
                  caller_number: { type: "string", maxLength: 64 },
                  caller_name: { type: "string", maxLength: 255 },
                  duration_seconds: { type: "integer", minimum: 0, default: 0 },
                  received_at: { type: "string", format: "date-time", description: "Default: the time of receipt." },
                  audio: { type: "string", format: "binary" },
                },
              },
              encoding: { audio: { contentType: "audio/wav, audio/x-wav, audio/ogg, audio/mpeg" } },
            },
          },
        },
        responses: {
          "200": { description: "A repeated message_id: the message as stored.", content: json(ref("VoicemailResource")) },
          "201": {
            description: "Stored.",
            headers: { Location: { schema: { type: "string" }, description: "The new message's URL." } },
            content: json(ref("VoicemailResource")),
          },
          "400": response("BadRequest"),
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "413": response("PayloadTooLarge"),
          "415": { description: "A body that is not multipart/form-data.", content: json(ref("Message")) },
          "422": response("ValidationFailed"),
          "500": response("ServerError"),
        },
      },
    },
    "/api/voicemail/{id}": {
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "integer", minimum: 1 } }],
      get: {
        operationId: "getVoicemail",
        tags: ["voicemail"],
        summary: "One voicemail message (without its audio).",
        responses: {
          "200": { description: "The message.", content: json(ref("VoicemailResource")) },
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "500": response("ServerError"),
        },
      },
      patch: {
        operationId: "updateVoicemail",
        tags: ["voicemail"],
        summary: "Marks a message heard or unheard.",
        description: "Body `{\"heard\": true}` (or false). Requires ADMIN or TENANT_ADMIN.",
        requestBody: {
          required: true,
          content: json({ type: "object", required: ["heard"], properties: { heard: { type: "boolean" } } }),
        },
        responses: {
          "200": { description: "The changed message.", content: json(ref("VoicemailResource")) },
          "400": response("BadRequest"),
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "413": response("PayloadTooLarge"),
          "415": response("UnsupportedMediaType"),
          "422": response("ValidationFailed"),
          "500": response("ServerError"),
        },
      },
      delete: {
        operationId: "deleteVoicemail",
        tags: ["voicemail"],
        summary: "Deletes a message and its audio.",
        description: "Requires ADMIN or TENANT_ADMIN.",
        responses: {
          "204": { description: "Deleted." },
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "500": response("ServerError"),
        },
      },
    },
    "/api/voicemail/{id}/audio": {
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "integer", minimum: 1 } }],
      get: {
        operationId: "getVoicemailAudio",
        tags: ["voicemail"],
        summary: "The message's audio, streamed.",
        description:
          "A reading key (ADMIN, TENANT_ADMIN, VIEWER) of the message's tenant. One `Range: bytes=a-b` (also `a-` and the suffix `-n`) " +
          "answers 206 with `Content-Range`; an unsatisfiable range 416 with `Content-Range: bytes */size`; several ranges are " +
          "answered whole (200). Another tenant's message is 404.",
        parameters: [{ name: "Range", in: "header", schema: { type: "string" }, example: "bytes=0-1023" }],
        responses: {
          "200": {
            description: "The whole audio.",
            headers: {
              "Content-Length": { schema: { type: "integer" } },
              "Accept-Ranges": { schema: { type: "string", const: "bytes" } },
            },
            content: { "audio/*": { schema: { type: "string", format: "binary" } } },
          },
          "206": {
            description: "The requested range.",
            headers: {
              "Content-Range": { schema: { type: "string" }, description: "bytes a-b/size" },
              "Content-Length": { schema: { type: "integer" } },
            },
            content: { "audio/*": { schema: { type: "string", format: "binary" } } },
          },
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "416": {
            description: "The range is outside the audio.",
            headers: { "Content-Range": { schema: { type: "string" }, description: "bytes */size" } },
            content: json(ref("Message")),
          },
          "500": response("ServerError"),
        },
      },
    },
    "/api/extensions/{id}/voicemail": {
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "integer", minimum: 1 } }],
      get: {
        operationId: "listExtensionVoicemail",
        tags: ["voicemail"],
        summary: "A page of an extension's voicemail, newest first.",
        description: "Requires ADMIN, TENANT_ADMIN or VIEWER; another tenant's extension is 404.",
        parameters: [
          { name: "heard", in: "query", schema: { type: "boolean" }, description: "Only heard (true/1) or unheard (false/0) messages." },
          { name: "page", in: "query", schema: { type: "integer", minimum: 1, default: 1 } },
          { name: "per_page", in: "query", schema: { type: "integer", minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PER_PAGE } },
        ],
        responses: {
          "200": { description: "One page.", content: json(ref("VoicemailCollection")) },
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "422": response("ValidationFailed"),
          "500": response("ServerError"),
        },
      },
    },
    "/api/extensions/{id}/voicemail/greeting": {
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "integer", minimum: 1 } }],
      put: {
        operationId: "putVoicemailGreeting",
        tags: ["voicemail"],
        summary: "Upload (or replace) the greeting callers hear before the beep.",
        description:
          "TENANT_ADMIN or ADMIN; another tenant's extension is 404. The WAV as the raw body (`Content-Type: audio/wav`), or " +
          "`multipart/form-data` with the file in a part named `audio`. At most 60 s of audio (and VOICEMAIL_MAX_BYTES); a body that is " +
          "not a WAV is 422 on `audio`, storing nothing. 201 when the extension had no greeting, 200 when it replaced one.",
        requestBody: {
          required: true,
          content: {
            "audio/wav": { schema: { type: "string", format: "binary" } },
            "multipart/form-data": {
              schema: { type: "object", required: ["audio"], properties: { audio: { type: "string", format: "binary" } } },
              encoding: { audio: { contentType: "audio/wav" } },
            },
          },
        },
        responses: {
          "200": { description: "Replaced.", content: json(ref("GreetingResource")) },
          "201": { description: "Stored (the extension had none).", content: json(ref("GreetingResource")) },
          "400": response("BadRequest"),
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "413": response("PayloadTooLarge"),
          "415": { description: "A body that is neither audio/wav nor multipart/form-data.", content: json(ref("Message")) },
          "422": response("ValidationFailed"),
          "500": response("ServerError"),
        },
      },
      get: {
        operationId: "getVoicemailGreeting",
        tags: ["voicemail"],
        summary: "The uploaded greeting's audio, as stored.",
        description: "TENANT_ADMIN or ADMIN. 404 when the extension has no greeting of its own (callers then hear the shipped default).",
        responses: {
          "200": { description: "The WAV.", content: { "audio/wav": { schema: { type: "string", format: "binary" } } } },
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "500": response("ServerError"),
        },
      },
      delete: {
        operationId: "deleteVoicemailGreeting",
        tags: ["voicemail"],
        summary: "Remove the greeting: callers hear the shipped default again.",
        description: "TENANT_ADMIN or ADMIN. 404 when there is none.",
        responses: {
          "204": { description: "Removed." },
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "500": response("ServerError"),
        },
      },
    },
    "/api/extensions/{id}/call-handling": {
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "integer", minimum: 1 } }],
      get: {
        operationId: "getCallHandling",
        tags: ["call handling"],
        summary: "An extension's do-not-disturb, ring time and forwards.",
        description: "Requires ADMIN, TENANT_ADMIN or VIEWER; another tenant's extension is 404.",
        responses: {
          "200": { description: "The extension's call handling.", content: json(ref("CallHandlingResource")) },
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "500": response("ServerError"),
        },
      },
      put: {
        operationId: "updateCallHandling",
        tags: ["call handling"],
        summary: "Change an extension's call handling (the same service as the updateCallHandling mutation).",
        description:
          "TENANT_ADMIN or ADMIN. Only the fields given change: a field left out keeps its value, a forward given as null is removed. " +
          "A destination's type may come in either case. Refused with 422 naming the field, changing nothing: `ring_seconds` outside 5–120, " +
          "a destination whose target does not exist in the tenant (or is not allowed, contract §11). Applies to the next call within 2 s.",
        requestBody: { required: true, content: json(ref("CallHandlingInput")) },
        responses: {
          "200": { description: "The call handling as saved.", content: json(ref("CallHandlingResource")) },
          "400": response("BadRequest"),
          "401": response("Unauthenticated"),
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "413": response("PayloadTooLarge"),
          "415": response("UnsupportedMediaType"),
          "422": response("ValidationFailed"),
          "500": response("ServerError"),
        },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "An API key." } },
    schemas: {
      Extension: {
        type: "object",
        additionalProperties: false,
        required: ["id", "tenant_id", "extension_number", "display_name", "email", "status", "voicemail_enabled", "created_at", "updated_at"],
        properties: {
          id: { type: "integer", minimum: 1 },
          tenant_id: { type: "integer", minimum: 1 },
          extension_number: extensionFields.extension_number,
          display_name: extensionFields.display_name,
          email: extensionFields.email,
          status: { type: "string", enum: ["active", "disabled"] },
          voicemail_enabled: { type: "boolean" },
          created_at: { type: "string", format: "date-time" },
          updated_at: { type: "string", format: "date-time" },
        },
      },
      ExtensionCreate: {
        type: "object",
        required: ["tenant_id", "extension_number", "secret"],
        properties: extensionFields,
      },
      ExtensionReplace: {
        type: "object",
        required: ["tenant_id", "extension_number"],
        properties: extensionFields,
      },
      ExtensionPatch: {
        type: "object",
        properties: {
          ...extensionFields,
          status: { type: "string", enum: ["active", "disabled"] },
          voicemail_enabled: { type: "boolean" },
        },
      },
      ExtensionResource: {
        type: "object",
        additionalProperties: false,
        required: ["data"],
        properties: { data: ref("Extension") },
      },
      ExtensionCollection: {
        type: "object",
        additionalProperties: false,
        required: ["data", "links", "meta"],
        properties: {
          data: { type: "array", items: ref("Extension") },
          links: ref("PageLinks"),
          meta: ref("PageMeta"),
        },
      },
      ImportResult: {
        type: "object",
        additionalProperties: false,
        required: ["dry_run", "created", "updated", "unchanged", "failed", "rows"],
        properties: {
          dry_run: { type: "boolean" },
          created: { type: "integer", minimum: 0 },
          updated: { type: "integer", minimum: 0 },
          unchanged: { type: "integer", minimum: 0 },
          failed: { type: "integer", minimum: 0 },
          rows: {
            type: "array",
            items: {
              type: "object",
              additionalProperties: false,
              required: ["line", "extension_number", "status", "errors"],
              properties: {
                line: { type: "integer", minimum: 1 },
                extension_number: { type: ["string", "null"] },
                status: { type: "string", enum: ["created", "updated", "unchanged", "failed"] },
                errors: {
                  type: "array",
                  items: {
                    type: "object",
                    additionalProperties: false,
                    required: ["field", "messages"],
                    properties: { field: { type: "string" }, messages: { type: "array", minItems: 1, items: { type: "string" } } },
                  },
                },
              },
            },
          },
        },
      },
      ImportResultResource: {
        type: "object",
        additionalProperties: false,
        required: ["data"],
        properties: { data: ref("ImportResult") },
      },
      ImportRefused: {
        type: "object",
        additionalProperties: false,
        required: ["message", "data"],
        properties: { message: { type: "string", minLength: 1 }, data: ref("ImportResult") },
      },
      EngineCredentials: {
        type: "object",
        additionalProperties: false,
        required: ["username", "domain", "ha1", "ha1b", "ha1_sha256", "tenant_id", "extension_id", "voicemail_enabled"],
        properties: {
          username: extensionFields.extension_number,
          domain: { type: "string", minLength: 1 },
          ha1: { type: "string", pattern: "^[0-9a-f]{32}$", description: "MD5(username:domain:secret)." },
          ha1b: { type: "string", pattern: "^[0-9a-f]{32}$", description: "MD5(username@domain:domain:secret)." },
          ha1_sha256: { type: "string", pattern: "^[0-9a-f]{64}$", description: "SHA-256(username:domain:secret) (RFC 8760)." },
          tenant_id: { type: "integer", minimum: 1 },
          extension_id: { type: "integer", minimum: 1 },
          voicemail_enabled: { type: "boolean" },
        },
      },
      EngineCredentialsResource: {
        type: "object",
        additionalProperties: false,
        required: ["data"],
        properties: { data: ref("EngineCredentials") },
      },
      PageLinks: {
        type: "object",
        additionalProperties: false,
        required: ["first", "last", "prev", "next"],
        properties: {
          first: { type: "string", format: "uri" },
          last: { type: "string", format: "uri" },
          prev: { type: ["string", "null"], format: "uri" },
          next: { type: ["string", "null"], format: "uri" },
        },
      },
      PageMeta: {
        type: "object",
        additionalProperties: false,
        required: ["current_page", "from", "last_page", "path", "per_page", "to", "total"],
        properties: {
          current_page: { type: "integer", minimum: 1 },
          from: { type: ["integer", "null"], minimum: 1 },
          last_page: { type: "integer", minimum: 1 },
          path: { type: "string", format: "uri" },
          per_page: { type: "integer", minimum: 1, maximum: MAX_PAGE_SIZE },
          to: { type: ["integer", "null"], minimum: 1 },
          total: { type: "integer", minimum: 0 },
        },
      },
      VoicemailMessage: {
        type: "object",
        additionalProperties: false,
        required: [
          "id", "tenant_id", "extension_id", "message_id", "call_id", "caller_number", "caller_name", "received_at",
          "duration_seconds", "heard", "content_type", "size_bytes", "audio_url", "created_at", "updated_at",
        ],
        properties: {
          id: { type: "integer", minimum: 1 },
          tenant_id: { type: "integer", minimum: 1 },
          extension_id: { type: "integer", minimum: 1 },
          message_id: { type: "string", minLength: 1 },
          call_id: { type: ["string", "null"] },
          caller_number: { type: ["string", "null"] },
          caller_name: { type: ["string", "null"] },
          received_at: { type: "string", format: "date-time" },
          duration_seconds: { type: "integer", minimum: 0 },
          heard: { type: "boolean" },
          content_type: { type: "string", enum: ["audio/wav", "audio/x-wav", "audio/ogg", "audio/mpeg"] },
          size_bytes: { type: "integer", minimum: 1 },
          audio_url: { type: "string", description: "The path of the audio download." },
          created_at: { type: "string", format: "date-time" },
          updated_at: { type: "string", format: "date-time" },
        },
      },
      VoicemailResource: {
        type: "object",
        additionalProperties: false,
        required: ["data"],
        properties: { data: ref("VoicemailMessage") },
      },
      VoicemailCollection: {
        type: "object",
        additionalProperties: false,
        required: ["data", "links", "meta"],
        properties: {
          data: { type: "array", items: ref("VoicemailMessage") },
          links: ref("PageLinks"),
          meta: ref("PageMeta"),
        },
      },
      CallDestination: {
        type: ["object", "null"],
        additionalProperties: false,
        required: ["type", "target"],
        description: "Where a call goes (contract §11): EXTENSION, RING_GROUP, QUEUE: its dialable number; VOICEMAIL: the extension's number; EXTERNAL: an E.164 number; HANGUP: null.",
        properties: {
          type: { type: "string", enum: ["extension", "ring_group", "queue", "voicemail", "external", "hangup"] },
          target: { type: ["string", "null"] },
        },
      },
      CallHandling: {
        type: "object",
        additionalProperties: false,
        required: ["do_not_disturb", "ring_seconds", "forward_always", "forward_busy", "forward_no_answer"],
        properties: {
          do_not_disturb: { type: "boolean" },
          ring_seconds: { type: "integer", minimum: 5, maximum: 120 },
          forward_always: ref("CallDestination"),
          forward_busy: ref("CallDestination"),
          forward_no_answer: ref("CallDestination"),
        },
      },
      CallHandlingResource: {
        type: "object",
        additionalProperties: false,
        required: ["data"],
        properties: { data: ref("CallHandling") },
      },
      CallHandlingInput: {
        type: "object",
        description: "Any of the fields of CallHandling; a forward given as null is removed; a destination's type in either case.",
        properties: {
          do_not_disturb: { type: "boolean" },
          ring_seconds: { type: "integer", minimum: 5, maximum: 120 },
          forward_always: ref("CallDestination"),
          forward_busy: ref("CallDestination"),
          forward_no_answer: ref("CallDestination"),
        },
      },
      GreetingResource: {
        type: "object",
        additionalProperties: false,
        required: ["data"],
        properties: {
          data: {
            type: "object",
            additionalProperties: false,
            required: ["extension_id", "content_type", "duration_seconds", "size_bytes", "updated_at"],
            properties: {
              extension_id: { type: "integer", minimum: 1 },
              content_type: { type: "string" },
              duration_seconds: { type: "number", minimum: 0, maximum: 60 },
              size_bytes: { type: "integer", minimum: 1 },
              updated_at: { type: "string", format: "date-time" },
            },
          },
        },
      },
      Message: {
        type: "object",
        additionalProperties: false,
        required: ["message"],
        properties: { message: { type: "string", minLength: 1 } },
      },
      ValidationError: {
        type: "object",
        additionalProperties: false,
        required: ["message", "errors"],
        properties: {
          message: { type: "string", minLength: 1 },
          errors: {
            type: "object",
            minProperties: 1,
            propertyNames: { pattern: "^[a-z][a-z0-9_]*$" },
            additionalProperties: { type: "array", minItems: 1, items: { type: "string", minLength: 1 } },
          },
        },
      },
      QueueConflict: {
        type: "object",
        additionalProperties: false,
        required: ["message", "queues"],
        properties: {
          message: { type: "string", minLength: 1 },
          queues: {
            type: "array",
            minItems: 1,
            items: {
              type: "object",
              additionalProperties: false,
              required: ["id", "name", "number"],
              properties: { id: { type: "integer", minimum: 1 }, name: { type: "string" }, number: { type: "string" } },
            },
          },
        },
      },
    },
    responses: {
      BadRequest: { description: "Malformed JSON, or a body that is not a JSON object.", content: json(ref("Message")) },
      Unauthenticated: {
        description: "No or unknown API key: `{\"message\":\"Unauthenticated.\"}`.",
        headers: { "WWW-Authenticate": { schema: { type: "string" } } },
        content: json(ref("Message")),
      },
      Forbidden: { description: "The key's role may not do this.", content: json(ref("Message")) },
      NotFound: { description: "No such (active) extension, or another tenant's.", content: json(ref("Message")) },
      PayloadTooLarge: { description: "The body is over the size limit.", content: json(ref("Message")) },
      UnsupportedMediaType: { description: "A body that is not application/json.", content: json(ref("Message")) },
      ValidationFailed: { description: "Invalid input: messages per field.", content: json(ref("ValidationError")) },
      ServerError: { description: "An unexpected failure; details are logged, never returned.", content: json(ref("Message")) },
    },
  },
} as const;
