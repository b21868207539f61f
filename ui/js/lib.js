// The component toolkit: Preact with htm templates, re-exported so every module imports from one place.
import { h, render, Fragment } from '../vendor/preact.mjs';
import { useState, useEffect, useLayoutEffect, useRef, useMemo, useCallback } from '../vendor/preact-hooks.mjs';
import htm from '../vendor/htm.mjs';

export const html = htm.bind(h);
export { h, render, Fragment, useState, useEffect, useLayoutEffect, useRef, useMemo, useCallback };
