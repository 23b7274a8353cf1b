/**
 * Inline TwiML (`Twiml=` on a call or a live-call update), read to find what it dials. Twilio
 * bills every leg a call opens, so a `<Dial>` of ten numbers costs ten legs on top of the call
 * itself. The reader is a small, strict XML reader for TwiML: anything two XML parsers could read
 * differently (a DOCTYPE and its entities, CDATA, processing instructions, duplicate attributes,
 * a number split by a comment, text where elements belong) is refused as malformed rather than
 * priced under one reading. Reading what it can, it then sorts the document into legs it can
 * price and verbs it cannot bound (a `<Redirect>`, a `<Gather>` or a `<Dial action>` fetch more
 * TwiML; `<Record>`, `<Pay>`, `<Connect>`… are paid add-ons): those make the call's price a
 * per-call estimate, with the visible legs as its minimum. Pure.
 */
import { malformed } from './refusal.js';
import { excerpt, QUOTE_MAX_CHARS, quote } from '../quote.js';

/** Twilio's limit on the `Twiml` parameter. */
export const MAX_TWIML_CHARACTERS = 4_000;
/** TwiML nests Response > Dial > Client > Parameter; SSML inside <Say> a few more. */
const MAX_DEPTH = 12;

export interface XmlElement {
  readonly name: string;
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: readonly XmlNode[];
}

export type XmlNode = XmlElement | { readonly text: string };

/** An element or attribute name from the request, as an error message shows it: cut when long. */
function tag(name: string): string {
  return `<${excerpt(name, QUOTE_MAX_CHARS)}>`;
}

function isElement(node: XmlNode): node is XmlElement {
  return 'name' in node;
}

// ---- The reader ----------------------------------------------------------------------------

// A name with at most one prefix (SSML's <amazon:effect>); other characters are not TwiML's.
const NAME = /[A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?/y;
const SPACE = /[ \t\r\n]*/y;
const XML_DECLARATION = /<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])1\.[01]\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])[Uu][Tt][Ff]-8\2)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\3)?[ \t\r\n]*\?>/y;
// Characters XML 1.0 does not allow at all (controls, U+FFFE/U+FFFF); a BOM is refused too.
const NOT_XML_CHARACTER = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFEFF\uFFFE\uFFFF]/;
const PREDEFINED_ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const REFERENCE = /&(?:([A-Za-z]+)|#([0-9]{1,7})|#x([0-9A-Fa-f]{1,6}));/y;

class Reader {
  private position = 0;

  constructor(private readonly text: string) {}

  at(literal: string): boolean {
    return this.text.startsWith(literal, this.position);
  }

  done(): boolean {
    return this.position >= this.text.length;
  }

  skipSpace(): void {
    SPACE.lastIndex = this.position;
    SPACE.exec(this.text);
    this.position = SPACE.lastIndex;
  }

  expect(literal: string, what: string): void {
    if (!this.at(literal)) throw malformed(`Twiml is not well-formed XML: expected ${what} at character ${this.position + 1}`);
    this.position += literal.length;
  }

  sticky(pattern: RegExp): RegExpExecArray | null {
    pattern.lastIndex = this.position;
    const match = pattern.exec(this.text);
    if (match !== null) this.position = pattern.lastIndex;
    return match;
  }

  name(): string {
    const match = this.sticky(NAME);
    if (match === null) throw malformed(`Twiml is not well-formed XML: expected a name at character ${this.position + 1}`);
    return match[0];
  }

  /** Comments carry nothing; `--` inside one is not XML. */
  comment(): void {
    const end = this.text.indexOf('-->', this.position + 4);
    if (end === -1) throw malformed('Twiml is not well-formed XML: a comment is not closed');
    if (this.text.slice(this.position + 4, end).includes('--')) throw malformed('Twiml is not well-formed XML: "--" inside a comment');
    this.position = end + 3;
  }

  /** Up to (not including) the next `<`, references decoded. */
  characterData(): string {
    const end = this.text.indexOf('<', this.position);
    const raw = this.text.slice(this.position, end === -1 ? this.text.length : end);
    if (raw.includes(']]>')) throw malformed('Twiml is not well-formed XML: "]]>" in text');
    this.position += raw.length;
    return decodeReferences(raw);
  }

  attributeValue(): string {
    const quoteChar = this.text[this.position];
    if (quoteChar !== '"' && quoteChar !== "'") throw malformed(`Twiml is not well-formed XML: expected a quoted attribute value at character ${this.position + 1}`);
    const end = this.text.indexOf(quoteChar, this.position + 1);
    if (end === -1) throw malformed('Twiml is not well-formed XML: an attribute value is not closed');
    const raw = this.text.slice(this.position + 1, end);
    if (raw.includes('<')) throw malformed('Twiml is not well-formed XML: "<" in an attribute value');
    this.position = end + 1;
    // XML normalises literal tabs and line breaks in attribute values to spaces.
    return decodeReferences(raw.replace(/[\t\r\n]/g, ' '));
  }
}

function decodeReferences(raw: string): string {
  if (!raw.includes('&')) return raw;
  let out = '';
  let from = 0;
  for (let at = raw.indexOf('&'); at !== -1; at = raw.indexOf('&', from)) {
    out += raw.slice(from, at);
    REFERENCE.lastIndex = at;
    const match = REFERENCE.exec(raw);
    if (match === null) throw malformed('Twiml is not well-formed XML: "&" must start &amp;, &lt;, &gt;, &quot;, &apos; or a character reference');
    const [whole, named, decimal, hex] = match;
    if (named !== undefined) {
      const value = PREDEFINED_ENTITIES[named];
      // Any other entity needs a DOCTYPE to define it, which is refused.
      if (value === undefined) throw malformed(`Twiml uses the undefined entity ${quote(`&${named};`)}`);
      out += value;
    } else {
      const codePoint = decimal !== undefined ? Number(decimal) : Number.parseInt(hex ?? '', 16);
      const valid = codePoint <= 0x10ffff && !(codePoint >= 0xd800 && codePoint <= 0xdfff) && !NOT_XML_CHARACTER.test(String.fromCodePoint(codePoint)) && codePoint !== 0;
      if (!valid) throw malformed(`Twiml has a character reference to a character XML does not allow: ${quote(whole)}`);
      out += String.fromCodePoint(codePoint);
    }
    from = at + whole.length;
  }
  return out + raw.slice(from);
}

function readElement(reader: Reader, depth: number): XmlElement {
  if (depth > MAX_DEPTH) throw malformed(`Twiml nests elements more than ${MAX_DEPTH} deep`);
  reader.expect('<', '"<"');
  const name = reader.name();
  const attributes = new Map<string, string>();
  const seen = new Set<string>();
  for (;;) {
    const before = reader.at(' ') || reader.at('\t') || reader.at('\r') || reader.at('\n');
    reader.skipSpace();
    if (reader.at('/>')) {
      reader.expect('/>', '"/>"');
      return { name, attributes, children: [] };
    }
    if (reader.at('>')) {
      reader.expect('>', '">"');
      break;
    }
    if (!before) throw malformed(`Twiml is not well-formed XML: attributes of ${tag(name)} must be separated by spaces`);
    const attribute = reader.name();
    // `timeLimit` and `timelimit` are one attribute to a case-blind reader and two to XML.
    if (seen.has(attribute.toLowerCase())) throw malformed(`Twiml gives the attribute ${quote(attribute)} of ${tag(name)} more than once`);
    seen.add(attribute.toLowerCase());
    reader.skipSpace();
    reader.expect('=', '"="');
    reader.skipSpace();
    attributes.set(attribute, reader.attributeValue());
  }
  const children: XmlNode[] = [];
  for (;;) {
    if (reader.done()) throw malformed(`Twiml is not well-formed XML: ${tag(name)} is not closed`);
    if (reader.at('</')) {
      reader.expect('</', '"</"');
      const closing = reader.name();
      if (closing !== name) throw malformed(`Twiml is not well-formed XML: ${tag(name)} is closed by ${tag(`/${closing}`)}`);
      reader.skipSpace();
      reader.expect('>', '">"');
      return { name, attributes, children };
    }
    if (reader.at('<!--')) reader.comment();
    else if (reader.at('<!') || reader.at('<?')) throw malformed('Twiml may not contain CDATA, a DOCTYPE or processing instructions');
    else if (reader.at('<')) children.push(readElement(reader, depth + 1));
    else children.push({ text: reader.characterData() });
  }
}

/** Reads a TwiML document: an optional XML declaration, one root element, comments and spaces around it. */
export function readTwimlDocument(text: string): XmlElement {
  if (text.length > MAX_TWIML_CHARACTERS) throw malformed(`Twiml is longer than Twilio's ${MAX_TWIML_CHARACTERS} characters`);
  if (NOT_XML_CHARACTER.test(text)) throw malformed('Twiml contains a character XML does not allow (a control character or a byte-order mark)');
  const reader = new Reader(text);
  // The declaration must come first, not even after spaces; twilio-node always writes one.
  if (reader.at('<?xml') && reader.sticky(XML_DECLARATION) === null) {
    throw malformed('Twiml has an XML declaration other than version 1.0/1.1 in UTF-8');
  }
  const skipMisc = (): void => {
    for (;;) {
      reader.skipSpace();
      if (!reader.at('<!--')) return;
      reader.comment();
    }
  };
  skipMisc();
  if (reader.at('<!') || reader.at('<?')) throw malformed('Twiml may not contain CDATA, a DOCTYPE or processing instructions');
  const root = readElement(reader, 1);
  skipMisc();
  if (!reader.done()) throw malformed('Twiml has content after its root element');
  return root;
}

// ---- What a document dials -----------------------------------------------------------------

/** One leg a document opens; `seconds` is the `<Dial timeLimit>` that bounds it, if any. */
export type TwimlLeg =
  | { readonly kind: 'phone'; readonly digits: string; readonly seconds: number | null }
  | { readonly kind: 'sip' | 'client' | 'conference' | 'queue'; readonly seconds: number | null };

export interface TwimlPlan {
  readonly legs: readonly TwimlLeg[];
  /** Why the document can cost more than its legs, or null when the legs are all it costs. */
  readonly unbounded: string | null;
}

const E164 = /^\+([1-9]\d{1,14})$/;
const SECONDS = /^\d{1,6}$/;
/** Twilio's limit on `<Dial timeLimit>` (and on a call's TimeLimit). */
const MAX_DIAL_TIME_LIMIT_SECONDS = 86_400;

/** Attributes that change neither what is dialled nor what it costs (callbacks, ringing, caller id). */
const STATUS_CALLBACKS = ['statusCallback', 'statusCallbackEvent', 'statusCallbackMethod'];
const AMD_TUNING = ['amdStatusCallback', 'amdStatusCallbackMethod', 'machineDetectionTimeout', 'machineDetectionSilenceTimeout', 'machineDetectionSpeechEndThreshold', 'machineDetectionSpeechThreshold'];
const RECORDING_CALLBACKS = ['recordingStatusCallback', 'recordingStatusCallbackEvent', 'recordingStatusCallbackMethod', 'recordingTrack', 'trim'];
const INERT_ATTRIBUTES: Readonly<Record<string, readonly string[]>> = {
  Say: ['voice', 'language', 'loop'],
  Play: ['loop', 'digits'],
  Pause: ['length'],
  Hangup: [],
  Reject: ['reason'],
  Leave: [],
  Stop: [],
  Dial: ['method', 'timeout', 'hangupOnStar', 'callerId', 'answerOnBridge', 'ringTone', 'sequential', 'referMethod', 'events', ...RECORDING_CALLBACKS],
  Number: ['sendDigits', 'method', 'byoc', ...STATUS_CALLBACKS, ...AMD_TUNING],
  Sip: ['username', 'password', 'method', ...STATUS_CALLBACKS, ...AMD_TUNING],
  Client: ['method', ...STATUS_CALLBACKS],
  Conference: [
    'muted', 'beep', 'startConferenceOnEnter', 'endConferenceOnExit', 'maxParticipants', 'region', 'participantLabel', 'jitterBufferSize',
    'coach', 'eventCallbackUrl', 'waitMethod', ...STATUS_CALLBACKS, ...RECORDING_CALLBACKS,
  ],
  Queue: ['method'],
};

/** Why an attribute can add cost: it fetches TwiML the proxy cannot see, or switches on a paid feature. */
const COSTLY_ATTRIBUTES: Readonly<Record<string, string>> = {
  action: 'more TwiML is fetched when it ends, which can dial anything',
  url: 'TwiML from a URL runs on the dialled leg, which can dial anything',
  referUrl: 'a SIP REFER leads into TwiML from a URL',
  waitUrl: 'TwiML from a URL plays while waiting',
  machineDetection: 'answering machine detection is billed per call',
  record: 'recording is billed per minute',
  reservationSid: 'TaskRouter reservations are not modelled',
  postWorkActivitySid: 'TaskRouter activities are not modelled',
};

/** Verbs with a cost of their own, or that hand the call to TwiML the proxy cannot see. */
const COSTLY_VERBS: Readonly<Record<string, string>> = {
  Redirect: 'fetches TwiML from a URL, which can dial anything',
  Gather: 'posts to an action URL whose TwiML can dial anything (and speech recognition is billed)',
  Record: 'recording and transcription are billed, and its action URL returns more TwiML',
  Enqueue: 'queues the call behind TwiML from URLs (and TaskRouter)',
  Connect: 'connects paid products (Media Streams, Conversation Relay, Video rooms, …)',
  Start: 'starts paid add-ons (Media Streams, SIPREC, real-time transcription)',
  Pay: 'charges a card through a payment connector',
  Refer: 'transfers the call by SIP REFER and fetches action TwiML',
  Sms: 'sends a message',
  Message: 'sends a message',
  Echo: 'is not modelled',
  Prompt: 'is not modelled',
};

/** SSML inside <Say> is speech, not instructions. */
const SSML_ELEMENTS = new Set(['break', 'emphasis', 'lang', 'p', 'phoneme', 'prosody', 's', 'say-as', 'sub', 'w', 'amazon:domain', 'amazon:effect']);

class Planner {
  readonly legs: TwimlLeg[] = [];
  unbounded: string | null = null;

  costly(reason: string): void {
    this.unbounded ??= reason;
  }

  /** Attributes outside the inert list make the document unbounded; a costly one with a value that switches nothing on does not. */
  attributes(element: XmlElement, inert: readonly string[], except: readonly string[] = []): void {
    for (const [name, value] of element.attributes) {
      if (inert.includes(name) || except.includes(name)) continue;
      if ((name === 'record' && value === 'do-not-record') || (name === 'waitUrl' && value === '')) continue;
      const reason = COSTLY_ATTRIBUTES[name];
      this.costly(`<${element.name}> attribute ${quote(name)}: ${reason ?? 'not modelled'}`);
    }
  }
}

/** The text of an element that must hold only text (a number, a SIP address, a name), trimmed. */
function onlyText(element: XmlElement): string {
  const texts: string[] = [];
  for (const child of element.children) {
    if (isElement(child)) throw malformed(`<${element.name}> must contain only text, not ${tag(child.name)}`);
    if (child.text.trim() !== '') texts.push(child.text);
  }
  // A comment splitting the text ("+1415<!-- -->5550100") is read as one text by some parsers and two by others.
  if (texts.length > 1) throw malformed(`the text of <${element.name}> is split by a comment`);
  return (texts[0] ?? '').trim();
}

function requireNoText(element: XmlElement): void {
  for (const child of element.children) {
    if (!isElement(child) && child.text.trim() !== '') throw malformed(`<${element.name}> has text outside its elements: ${quote(child.text.trim())}`);
  }
}

function phoneLeg(text: string, where: string, seconds: number | null): TwimlLeg {
  const match = E164.exec(text);
  // A national format ("415-555-0100") is read relative to a country the request does not state.
  if (match === null) throw malformed(`${where} must be an E.164 number such as +14155550100, got ${quote(text)}`);
  return { kind: 'phone', digits: match[1] ?? '', seconds };
}

function dialTimeLimit(dial: XmlElement): number | null {
  const text = dial.attributes.get('timeLimit');
  if (text === undefined) return null;
  const seconds = SECONDS.test(text) ? Number(text) : Number.NaN;
  if (!(seconds >= 1 && seconds <= MAX_DIAL_TIME_LIMIT_SECONDS)) {
    throw malformed(`<Dial timeLimit> must be a whole number of seconds from 1 to ${MAX_DIAL_TIME_LIMIT_SECONDS}, got ${quote(text)}`);
  }
  return seconds;
}

function planNoun(planner: Planner, noun: XmlElement, seconds: number | null): void {
  switch (noun.name) {
    case 'Number':
      planner.attributes(noun, INERT_ATTRIBUTES.Number ?? []);
      planner.legs.push(phoneLeg(onlyText(noun), '<Number>', seconds));
      return;
    case 'Sip': {
      planner.attributes(noun, INERT_ATTRIBUTES.Sip ?? []);
      const address = onlyText(noun);
      if (!/^sips?:./i.test(address)) throw malformed(`<Sip> must hold a sip: address, got ${quote(address)}`);
      planner.legs.push({ kind: 'sip', seconds });
      return;
    }
    case 'Client': {
      planner.attributes(noun, INERT_ATTRIBUTES.Client ?? []);
      const elements = noun.children.filter(isElement);
      if (elements.length === 0) {
        if (onlyText(noun) === '') throw malformed('<Client> must name a client');
      } else {
        requireNoText(noun);
        for (const child of elements) if (child.name !== 'Identity' && child.name !== 'Parameter') planner.costly(`<Client>${tag(child.name)} is not modelled`);
      }
      planner.legs.push({ kind: 'client', seconds });
      return;
    }
    case 'Conference':
      planner.attributes(noun, INERT_ATTRIBUTES.Conference ?? []);
      if (onlyText(noun) === '') throw malformed('<Conference> must name a conference');
      planner.legs.push({ kind: 'conference', seconds });
      return;
    case 'Queue':
      planner.attributes(noun, INERT_ATTRIBUTES.Queue ?? []);
      if (onlyText(noun) === '') throw malformed('<Queue> must name a queue');
      planner.legs.push({ kind: 'queue', seconds });
      return;
    case 'Application':
      planner.costly('<Dial><Application> runs the TwiML of an application, which can dial anything');
      return;
    default:
      planner.costly(`<Dial>${tag(noun.name)} is not modelled`);
  }
}

function planDial(planner: Planner, dial: XmlElement): void {
  planner.attributes(dial, INERT_ATTRIBUTES.Dial ?? [], ['timeLimit']);
  const seconds = dialTimeLimit(dial);
  const nouns = dial.children.filter(isElement);
  if (nouns.length === 0) {
    // <Dial>+14155550100</Dial>: the text is the number.
    const text = onlyText(dial);
    if (text === '') throw malformed('<Dial> must name something to dial');
    planner.legs.push(phoneLeg(text, '<Dial>', seconds));
    return;
  }
  requireNoText(dial);
  for (const noun of nouns) planNoun(planner, noun, seconds);
}

function planSsml(planner: Planner, element: XmlElement): void {
  for (const child of element.children) {
    if (!isElement(child)) continue;
    if (SSML_ELEMENTS.has(child.name)) planSsml(planner, child);
    else planner.costly(`${tag(child.name)} inside <Say> is not SSML and is not modelled`);
  }
}

function planVerb(planner: Planner, verb: XmlElement): void {
  const inert = INERT_ATTRIBUTES[verb.name];
  switch (verb.name) {
    case 'Dial':
      planDial(planner, verb);
      return;
    case 'Say':
      // Text-to-speech is billed per character for some voices: cents at most for the 4,000
      // characters a Twiml parameter holds, and not modelled (see docs/pricing.md (Twilio)).
      planner.attributes(verb, inert ?? []);
      planSsml(planner, verb);
      return;
    case 'Play':
    case 'Pause':
    case 'Hangup':
    case 'Reject':
    case 'Leave':
      planner.attributes(verb, inert ?? []);
      onlyText(verb);
      return;
    case 'Stop':
      // Stopping a stream or a recording only ever ends a cost.
      planner.attributes(verb, inert ?? []);
      requireNoText(verb);
      return;
    default: {
      const reason = COSTLY_VERBS[verb.name];
      planner.costly(`${tag(verb.name)} ${reason ?? 'is not a TwiML verb the proxy models'}`);
    }
  }
}

/**
 * The legs an inline TwiML document dials and whether anything in it can cost more. Throws a
 * malformed refusal when the document cannot be read unambiguously.
 */
export function planTwiml(text: string): TwimlPlan {
  if (text.trim() === '') throw malformed('Twiml is empty');
  const root = readTwimlDocument(text);
  if (root.name !== 'Response') throw malformed(`Twiml must be a <Response> document, got ${tag(root.name)}`);
  if (root.attributes.size > 0) throw malformed('<Response> takes no attributes');
  requireNoText(root);
  const planner = new Planner();
  for (const verb of root.children) if (isElement(verb)) planVerb(planner, verb);
  return { legs: planner.legs, unbounded: planner.unbounded };
}
