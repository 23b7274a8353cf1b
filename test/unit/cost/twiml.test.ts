import twilio from 'twilio';
import { describe, expect, it } from 'vitest';

import { CostRefusal } from '../../../core/cost/refusal.js';
import { MAX_TWIML_CHARACTERS, planTwiml, readTwimlDocument, type TwimlLeg, type TwimlPlan, type XmlElement } from '../../../core/cost/twiml.js';

function refusal(read: () => unknown): string {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(CostRefusal);
    expect((error as CostRefusal).code).toBe('request_malformed');
    return (error as CostRefusal).message;
  }
  throw new Error('expected a refusal');
}

const phone = (digits: string, seconds: number | null = null): TwimlLeg => ({ kind: 'phone', digits, seconds });

describe('readTwimlDocument', () => {
  it('reads elements, attributes, text and references', () => {
    const root = readTwimlDocument(`<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n  <Say voice='alice' language="en-GB">Tom &amp; Jerry &lt;3 &#x263A;&#65;</Say>\n  <Hangup/>\n</Response>\n`);
    expect(root.name).toBe('Response');
    const say = root.children.find((child): child is XmlElement => 'name' in child && child.name === 'Say');
    expect(say?.attributes).toEqual(new Map([['voice', 'alice'], ['language', 'en-GB']]));
    expect(say?.children).toEqual([{ text: 'Tom & Jerry <3 ☺A' }]);
  });

  it('reads comments around and between elements', () => {
    expect(readTwimlDocument('<!-- a --><Response><!-- b --><Hangup/></Response><!-- c -->').name).toBe('Response');
  });

  it('normalises line breaks in attribute values to spaces, as XML does', () => {
    const root = readTwimlDocument('<Response a="x\ny"/>');
    expect(root.attributes.get('a')).toBe('x y');
  });

  it.each<[string, string, string]>([
    ['text outside the root', '<Response/>x', 'content after its root element'],
    ['two roots', '<Response/><Response/>', 'content after its root element'],
    ['an unclosed element', '<Response><Dial>', 'is not closed'],
    ['a mismatched end tag', '<Response></Dial>', 'is closed by'],
    ['a DOCTYPE', '<!DOCTYPE Response><Response/>', 'DOCTYPE'],
    ['CDATA', '<Response><Say><![CDATA[x]]></Say></Response>', 'CDATA'],
    ['a processing instruction', '<Response><?php echo 1 ?></Response>', 'processing instructions'],
    ['a declaration after spaces', ' <?xml version="1.0"?><Response/>', 'processing instructions'],
    ['a declaration in another encoding', '<?xml version="1.0" encoding="ISO-8859-1"?><Response/>', 'XML declaration'],
    ['an undefined entity', '<Response><Say>&nbsp;</Say></Response>', 'undefined entity "&nbsp;"'],
    ['a bare ampersand', '<Response><Say>a & b</Say></Response>', '"&" must start'],
    ['a reference to NUL', '<Response><Say>&#0;</Say></Response>', 'character XML does not allow'],
    ['a reference to a surrogate', '<Response><Say>&#xD800;</Say></Response>', 'character XML does not allow'],
    ['a control character', '<Response><Say>\u0001</Say></Response>', 'control character'],
    ['a byte-order mark', '\uFEFF<Response/>', 'byte-order mark'],
    ['"--" in a comment', '<Response><!-- a -- b --></Response>', '"--" inside a comment'],
    ['an unclosed comment', '<Response><!-- a </Response>', 'comment is not closed'],
    ['"]]>" in text', '<Response><Say>]]></Say></Response>', '"]]>" in text'],
    ['"<" in an attribute', '<Response a="<"/>', '"<" in an attribute value'],
    ['an unquoted attribute', '<Response a=1/>', 'quoted attribute value'],
    ['attributes without a space', '<Response a="1"b="2"/>', 'must be separated by spaces'],
    ['a duplicate attribute', '<Response a="1" a="2"/>', 'more than once'],
    ['attributes differing only in case', '<Dial timeLimit="60" TimeLimit="86400"/>', 'more than once'],
    ['too deep', `${'<a>'.repeat(13)}${'</a>'.repeat(13)}`, 'more than 12 deep'],
    ['too long', `<Response><Say>${'a'.repeat(MAX_TWIML_CHARACTERS)}</Say></Response>`, "longer than Twilio's 4000 characters"],
  ])('refuses %s', (_name, text, message) => {
    expect(refusal(() => readTwimlDocument(text))).toContain(message);
  });

  it('quotes at most 40 characters of a name it refuses', () => {
    const name = 'N'.repeat(500);
    const message = refusal(() => readTwimlDocument(`<Response><${name}>`));
    expect(message.length).toBeLessThan(200);
    expect(message).toContain('(500 characters)');
  });
});

describe('planTwiml', () => {
  it.each<[string, string, TwimlPlan]>([
    ['a document that dials nothing', '<Response><Say>hi</Say><Play>https://x/a.mp3</Play><Pause/><Hangup/></Response>', { legs: [], unbounded: null }],
    ['an empty <Response>', '<Response/>', { legs: [], unbounded: null }],
    ['a number as <Dial> text, trimmed', '<Response><Dial>\n  +14155550100\n</Dial></Response>', { legs: [phone('14155550100')], unbounded: null }],
    [
      'every noun of a <Dial>, with its timeLimit',
      '<Response><Dial timeLimit="90"><Number>+447700900123</Number><Sip>sip:a@b</Sip><Client>c</Client></Dial><Dial><Conference>r</Conference></Dial><Dial><Queue>q</Queue></Dial></Response>',
      {
        legs: [phone('447700900123', 90), { kind: 'sip', seconds: 90 }, { kind: 'client', seconds: 90 }, { kind: 'conference', seconds: null }, { kind: 'queue', seconds: null }],
        unbounded: null,
      },
    ],
    ['SSML inside <Say>', '<Response><Say>a<break time="1s"/><prosody rate="slow">b</prosody><amazon:effect name="whispered">c</amazon:effect></Say></Response>', { legs: [], unbounded: null }],
    ['<Stop> of a stream', '<Response><Stop><Stream name="s"/></Stop></Response>', { legs: [], unbounded: null }],
    [
      'legs before and after an unbounded verb',
      '<Response><Dial>+14155550100</Dial><Redirect>https://x</Redirect><Dial>+14155550101</Dial></Response>',
      { legs: [phone('14155550100'), phone('14155550101')], unbounded: '<Redirect> fetches TwiML from a URL, which can dial anything' },
    ],
    ['an unknown verb', '<Response><Teleport/></Response>', { legs: [], unbounded: '<Teleport> is not a TwiML verb the proxy models' }],
    ['an unknown attribute', '<Response><Play loop="2" volume="11">x</Play></Response>', { legs: [], unbounded: '<Play> attribute "volume": not modelled' }],
    ['<Dial record>', '<Response><Dial record="record-from-answer">+14155550100</Dial></Response>', { legs: [phone('14155550100')], unbounded: '<Dial> attribute "record": recording is billed per minute' }],
  ])('%s', (_name, text, plan) => {
    expect(planTwiml(text)).toEqual(plan);
  });

  it('reads what twilio-node writes', () => {
    const response = new twilio.twiml.VoiceResponse();
    response.say('Hello & <welcome>');
    const dial = response.dial({ timeLimit: 300, answerOnBridge: true });
    dial.number({ statusCallback: 'https://x/cb', statusCallbackEvent: ['answered', 'completed'] }, '+14155550100');
    dial.client({}, 'alice');
    response.hangup();
    expect(planTwiml(response.toString())).toEqual({ legs: [phone('14155550100', 300), { kind: 'client', seconds: 300 }], unbounded: null });
  });

  it.each<[string, string, string]>([
    ['an empty document', '  ', 'Twiml is empty'],
    ['a root other than <Response>', '<Dial>+14155550100</Dial>', 'must be a <Response> document'],
    ['attributes on <Response>', '<Response a="1"/>', 'takes no attributes'],
    ['text in <Response>', '<Response>+14155550100</Response>', 'text outside its elements'],
    ['a national number', '<Response><Dial><Number>(415) 555-0100</Number></Dial></Response>', '<Number> must be an E.164 number'],
    ['a number split by a comment', '<Response><Dial>+1415<!---->5550100</Dial></Response>', 'split by a comment'],
    ['an element inside <Number>', '<Response><Dial><Number><b/>+14155550100</Number></Dial></Response>', 'must contain only text'],
    ['text beside nouns', '<Response><Dial>+1<Number>+14155550100</Number></Dial></Response>', 'text outside its elements'],
    ['an empty <Dial>', '<Response><Dial> </Dial></Response>', 'must name something to dial'],
    ['a <Sip> that is not a SIP address', '<Response><Dial><Sip>bob@example.com</Sip></Dial></Response>', 'sip: address'],
    ['an empty <Client>', '<Response><Dial><Client/></Dial></Response>', 'must name a client'],
    ['an empty <Conference>', '<Response><Dial><Conference/></Dial></Response>', 'must name a conference'],
    ['a timeLimit of 0', '<Response><Dial timeLimit="0">+14155550100</Dial></Response>', 'timeLimit> must be a whole number'],
    ['a timeLimit with spaces', '<Response><Dial timeLimit=" 60">+14155550100</Dial></Response>', 'timeLimit> must be a whole number'],
    ['a timeLimit over 24 h', '<Response><Dial timeLimit="86401">+14155550100</Dial></Response>', 'timeLimit> must be a whole number'],
  ])('refuses %s', (_name, text, message) => {
    expect(refusal(() => planTwiml(text))).toContain(message);
  });
});
