-- 0001: the products table, the source of truth that the vector index mirrors.
-- Applied once by refarch.db.migrations; never edit it after release, add 0002+ instead.

CREATE TABLE products (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku          text NOT NULL UNIQUE CHECK (sku <> ''),
    name         text NOT NULL,
    category     text,
    description  text NOT NULL,
    price        numeric(12, 2) NOT NULL CHECK (price >= 0),
    -- When the catalog says the product last changed (from the source file, may be NULL).
    last_updated timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- When this row last changed in Postgres.
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Search filters by category and price range (metadata filters read back from Postgres).
CREATE INDEX products_category_idx ON products (category);
CREATE INDEX products_price_idx ON products (price);

COMMENT ON TABLE products IS 'Product catalog; the source of truth the vector index is synced from.';
COMMENT ON COLUMN products.sku IS 'Stock keeping unit from the catalog; the natural key loads upsert on.';
