import Type, { type TSchema } from 'typebox';

/** `?limit&offset` of every paged list. */
export const PageQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  offset: Type.Integer({ minimum: 0, default: 0 }),
});

/** The response of a paged list of `item`. */
export const Page = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() });

export const UuidParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
