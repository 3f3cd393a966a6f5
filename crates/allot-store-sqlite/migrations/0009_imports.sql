-- Imports refer to accounts by their key in another system.
ALTER TABLE accounts ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX accounts_external_id ON accounts (external_id)
    WHERE external_id IS NOT NULL;
-- Products are referred to by SKU (not unique: the first match wins).
CREATE INDEX IF NOT EXISTS products_sku ON products (sku) WHERE sku IS NOT NULL;
