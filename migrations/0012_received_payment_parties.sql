-- A received payment (an unprompted M-Pesa C2B) stored its payer as a customer party without
-- the `channelNumber` every customer party has, so its view was not the `Party` the API
-- documents. Since this release new ones carry it; this gives the older ones the number of
-- the channel they came through. Each row is joined to a channel of its own org.
UPDATE provider_payments AS p
SET request = jsonb_set(request, '{debitParty,customer,channelNumber}', to_jsonb(c.channel_number))
FROM payment_channels AS c
WHERE c.org_id = p.org_id
    AND c.id = p.channel_id
    AND p.flow = 'received'
    AND jsonb_typeof(p.request -> 'debitParty' -> 'customer') = 'object'
    AND NOT (p.request -> 'debitParty' -> 'customer') ? 'channelNumber';
