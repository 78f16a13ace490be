import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ATTEMPT_STATUSES,
  isLiveAttempt,
  transitionAttempt,
  type AttemptEvent,
  type AttemptStatus,
} from '../../../src/engine/model/attemptLifecycle';
import { isPipelineError } from '../../../src/engine/errors';

const EVENTS: AttemptEvent[] = [
  { type: 'started' },
  { type: 'marker', check: false },
  { type: 'marker', check: true },
  { type: 'checked' },
  { type: 'settle' },
];

const key = (e: AttemptEvent) => (e.type === 'marker' ? `marker(check=${e.check})` : e.type);

/** Every (status, event) pair and what it must give: a status, null (a race ignored) or 'throws'. */
const EXPECTED: Record<AttemptStatus, Record<string, AttemptStatus | null | 'throws'>> = {
  preparing: {
    started: 'running',
    'marker(check=false)': 'throws',
    'marker(check=true)': 'throws',
    checked: 'throws',
    settle: 'settled',
  },
  running: {
    started: 'throws',
    'marker(check=false)': 'committing',
    'marker(check=true)': 'checking',
    checked: 'throws',
    settle: 'settled',
  },
  checking: {
    started: 'throws',
    'marker(check=false)': null,
    'marker(check=true)': null,
    checked: 'committing',
    settle: 'settled',
  },
  committing: {
    started: 'throws',
    'marker(check=false)': null,
    'marker(check=true)': null,
    checked: 'throws',
    settle: 'settled',
  },
  settled: {
    started: null,
    'marker(check=false)': null,
    'marker(check=true)': null,
    checked: null,
    settle: null,
  },
};

test('every event in every attempt status does what the table says', () => {
  for (const status of ATTEMPT_STATUSES) {
    for (const event of EVENTS) {
      const want = EXPECTED[status][key(event)];
      if (want === 'throws') {
        assert.throws(
          () => transitionAttempt(status, event),
          (e: unknown) => isPipelineError(e) && e.code === 'illegal-transition',
          `${status} + ${key(event)} should throw`,
        );
      } else {
        assert.equal(transitionAttempt(status, event), want, `${status} + ${key(event)}`);
      }
    }
  }
});

test('settled is the only final status, and every other status can settle', () => {
  for (const status of ATTEMPT_STATUSES) {
    assert.equal(isLiveAttempt(status), status !== 'settled');
    if (status !== 'settled') assert.equal(transitionAttempt(status, { type: 'settle' }), 'settled');
  }
});
