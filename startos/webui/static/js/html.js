// One place that binds htm to Preact, so every view writes html`...` with the same h().
import { Fragment, h, render } from "preact";
import htm from "htm";

export const html = htm.bind(h);
export { Fragment, h, render };
export { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
