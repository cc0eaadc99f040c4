import { IsEnum, IsString, Length } from "class-validator";
import { Field, ID, InputType, ObjectType } from "type-graphql";
import { Role } from "../../auth/role";
import { ApiKey } from "./api-key.entity";

@InputType()
export class CreateApiKeyInput {
  @Field()
  @IsString({ message: "The name must be a string." })
  @Length(1, 255, { message: "The name must be between 1 and 255 characters." })
  name!: string;

  @Field(() => Role)
  @IsEnum(Role, { message: "The role must be one of ADMIN, TENANT_ADMIN, VIEWER, INGEST." })
  role!: Role;

  @Field(() => ID, { nullable: true, description: "Required for TENANT_ADMIN and VIEWER; optional for INGEST; absent for ADMIN." })
  tenantId?: string | null;
}

@ObjectType({ simpleResolvers: true })
export class CreatedApiKey {
  @Field({ description: "The key itself. Shown only here, once: store it now." })
  key!: string;

  @Field(() => ApiKey)
  apiKey!: ApiKey;
}
