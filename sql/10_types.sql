-- Enumerations shared by the tables and the RPC results.

CREATE TYPE mps.card_type AS ENUM ('standard', 'prepaid', 'corporate', 'voucher');
CREATE TYPE mps.card_status AS ENUM ('active', 'frozen', 'closed');
-- Who set a card's status, lowest first: its owners/admins, the platform admin.
CREATE TYPE mps.card_authority AS ENUM ('card', 'platform');
CREATE TYPE mps.binding_role AS ENUM ('owner', 'admin', 'member', 'viewer');
CREATE TYPE mps.merchant_status AS ENUM ('active', 'suspended', 'closed');
CREATE TYPE mps.merchant_role AS ENUM ('operator', 'manager');
CREATE TYPE mps.settlement_mode AS ENUM ('realtime', 't_plus_1', 'monthly');
CREATE TYPE mps.tx_kind AS ENUM ('payment', 'refund', 'recharge', 'pass_purchase',
                                 'pass_redemption', 'adjustment');
CREATE TYPE mps.tx_status AS ENUM ('completed', 'partially_refunded', 'refunded');
CREATE TYPE mps.settlement_status AS ENUM ('pending', 'paid');
