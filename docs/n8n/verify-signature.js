// rendergate: check a Standard Webhooks signature in an n8n Code node (JavaScript, "Run Once for All
// Items"). The Webhook node before it must have its "Raw Body" option on. n8n must allow the crypto module:
// NODE_FUNCTION_ALLOW_BUILTIN=crypto. Paste the target's secret (the "secret" of its entry in the targets
// document) below.
const crypto = require('crypto');

const SECRET = 'whsec_PASTE_THE_TARGETS_SECRET_HERE';
const TOLERANCE_SECONDS = 5 * 60; // a captured request cannot be replayed later than this
const REMEMBERED = 1000; // webhook ids kept to recognise a retry of what was already handled

const headers = $input.first().json.headers;
const id = headers['webhook-id'] || '';
const timestamp = headers['webhook-timestamp'] || '';
const body = (await this.helpers.getBinaryDataBuffer(0, 'data')).toString('utf8');

function signed() {
  if (!id || id.includes('.') || !/^[0-9]+$/.test(timestamp)) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) return false;
  const key = Buffer.from(SECRET.replace(/^whsec_/, ''), 'base64');
  const expected = crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${body}`, 'utf8').digest();
  return (headers['webhook-signature'] || '').split(' ').some((entry) => {
    const [version, signature] = entry.split(',');
    const given = Buffer.from(signature || '', 'base64');
    return version === 'v1' && given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
}

const verified = signed();
const memory = $getWorkflowStaticData('global'); // kept between production executions
memory.seen = memory.seen || [];
const duplicate = verified && memory.seen.includes(id);
if (verified && !duplicate) memory.seen = [...memory.seen, id].slice(-REMEMBERED);
return [{ json: { verified, duplicate, event: verified ? JSON.parse(body) : null } }];
