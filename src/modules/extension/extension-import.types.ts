import { Field, Int, ObjectType, registerEnumType } from "type-graphql";

export enum ImportFormat {
  CSV = "CSV",
  JSON = "JSON",
}
registerEnumType(ImportFormat, { name: "ImportFormat" });

export enum ImportMode {
  /** Every row is a new extension; a number that exists fails its row. */
  CREATE = "CREATE",
  /** A row whose number exists updates that extension (the columns it has); the others are created. */
  UPSERT = "UPSERT",
}
registerEnumType(ImportMode, { name: "ImportMode" });

export enum ImportRowStatus {
  CREATED = "CREATED",
  UPDATED = "UPDATED",
  UNCHANGED = "UNCHANGED",
  FAILED = "FAILED",
}
registerEnumType(ImportRowStatus, { name: "ImportRowStatus" });

@ObjectType({ simpleResolvers: true })
export class ImportFieldError {
  @Field({ description: "The column (REST field name) the messages are about." })
  field!: string;

  @Field(() => [String])
  messages!: string[];
}

@ObjectType({ simpleResolvers: true })
export class ImportRow {
  @Field(() => Int, { description: "CSV: the file line the row starts on (the header is line 1). JSON: the element's position, from 1." })
  line!: number;

  @Field(() => String, { nullable: true })
  extensionNumber!: string | null;

  @Field(() => ImportRowStatus, { description: "What the row did, or, in a dry run or a refused file, would do." })
  status!: ImportRowStatus;

  @Field(() => [ImportFieldError])
  errors!: ImportFieldError[];
}

@ObjectType({ simpleResolvers: true, description: "All or nothing: when failed > 0 nothing was written, and the other rows tell what they would have done." })
export class ImportResult {
  @Field()
  dryRun!: boolean;

  @Field(() => Int)
  created!: number;

  @Field(() => Int)
  updated!: number;

  @Field(() => Int)
  unchanged!: number;

  @Field(() => Int)
  failed!: number;

  @Field(() => [ImportRow])
  rows!: ImportRow[];
}
