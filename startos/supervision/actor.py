"""A pykka actor whose inbox, futures and loop run on gevent greenlets.

Pykka 3 dropped its gevent runtime, and plain pykka has three holes a supervision tree
cannot live with (REFERENCE.md §10):

* an actor's death is reported to nobody, and never with a reason;
* a ``BaseException`` inside any handler stops *every* actor in the process;
* a failing ``on_start`` calls neither ``on_stop`` nor ``on_failure``.

``GeventActor`` closes all three: its loop catches everything, records an :class:`ExitReason`
and hands it to every monitor (see :func:`monitor`), and only ever stops itself.

``Actor`` adds typed dispatch: a handler method is marked with ``@handles(MessageType)`` and
``on_receive`` routes each message by its exact type, so every message an actor understands is
a strict msgspec struct listed in ``startos.protocol``.
"""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import gevent
import pykka
from gevent.event import AsyncResult
from gevent.greenlet import Greenlet
from gevent.pool import Group
from gevent.queue import SimpleQueue
from greenlet import GreenletExit
from pykka import ActorDeadError, ActorRef, ActorRegistry
from pykka import messages as pykka_messages

from startos.errors import StartOSError

__all__ = [
    "Actor",
    "ActorCrashed",
    "ExitReason",
    "GeventActor",
    "GeventFuture",
    "UnknownMessage",
    "demonitor",
    "describe_greenlet",
    "exit_reason",
    "handles",
    "kill",
    "monitor",
    "running_greenlets",
    "wait_exited",
    "wait_started",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Monitor = Callable[[ActorRef[Any], "ExitReason"], None]


class UnknownMessage(StartOSError):
    """Raised when an actor receives a message type it has no handler for."""


class ActorCrashed(StartOSError):
    """Raised when waiting on an actor that exited abnormally (e.g. its ``on_start`` failed)."""


@dataclass(frozen=True, slots=True)
class ExitReason:
    """Why an actor's loop ended.

    ``kind`` is ``normal`` (asked to stop), ``error`` (an exception escaped a handler or hook) or
    ``killed`` (its greenlet was killed). OTP calls the first *normal* and the others *abnormal*;
    transient children are restarted only on abnormal exits.
    """

    kind: str
    message: str = ""
    exception: BaseException | None = None

    @property
    def abnormal(self) -> bool:
        return self.kind != "normal"

    def __str__(self) -> str:
        return self.kind if not self.message else f"{self.kind}: {self.message}"

    @classmethod
    def from_exception(cls, exc: BaseException, during: str = "") -> ExitReason:
        if isinstance(exc, GreenletExit):
            return KILLED
        if isinstance(exc, StartOSError):  # already one readable line, written for people
            return cls("error", str(exc), exc)
        where = f" in {during}" if during else ""
        return cls("error", f"{type(exc).__name__}{where}: {exc}", exc)


NORMAL = ExitReason("normal")
KILLED = ExitReason("killed", "greenlet killed")


class GeventFuture(pykka.Future[T]):
    """A pykka future backed by gevent's ``AsyncResult``: waiting yields to the hub."""

    __slots__ = ("_async",)

    def __init__(self) -> None:
        super().__init__()
        self._async: AsyncResult = AsyncResult()

    def get(self, *, timeout: float | None = None) -> T:
        if self._get_hook is not None:
            return super().get(timeout=timeout)
        try:
            return self._async.get(timeout=timeout)
        except gevent.Timeout as exc:
            if self._async.ready():  # the value itself was a Timeout raised by the actor
                raise
            raise pykka.Timeout(f"{timeout} seconds") from exc

    def set(self, value: T | None = None) -> None:
        if self._async.ready():
            raise RuntimeError("future already set")
        self._async.set(value)

    def set_exception(self, exc_info: Any = None) -> None:
        if exc_info is None:
            exc_info = sys.exc_info()
        if self._async.ready():
            raise RuntimeError("future already set")
        self._async.set_exception(exc_info[1], exc_info=exc_info)

    def ready(self) -> bool:
        """True once a value or an exception has been set."""
        return bool(self._async.ready())


class GeventActor(pykka.Actor):
    """Pykka actor on a greenlet, with exit reasons, monitors and contained failures."""

    _greenlet: Greenlet | None
    _reply_to: pykka.Future[Any] | None
    _group: Group | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._greenlet = None
        self._reply_to = None
        self._monitors: dict[int, Monitor] = {}
        self._monitor_seq = 0
        self._started: AsyncResult = AsyncResult()
        self._exited: AsyncResult = AsyncResult()
        self._finished = False
        self._group = None  # created by the first spawn: most actors start no greenlet
        self._stop_reply: pykka.Future[Any] | None = None
        # The ref outlives the actor object (it holds only a weakref to it): keep the start and
        # exit results reachable from the ref so a reason is never lost to garbage collection.
        self._actor_ref._startos_started = self._started  # type: ignore[attr-defined]
        self._actor_ref._startos_exited = self._exited  # type: ignore[attr-defined]

    # -- pykka runtime hooks -------------------------------------------------------------------

    @staticmethod
    def _create_actor_inbox() -> Any:
        return SimpleQueue()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return GeventFuture()

    def _start_actor_loop(self) -> None:
        self._greenlet = gevent.spawn(self._actor_loop)
        # A greenlet killed before it ever ran never enters _actor_loop; the link still fires.
        self._greenlet.link(self._on_greenlet_dead)

    def _actor_loop(self) -> None:
        reason = NORMAL
        try:
            try:
                self.on_start()
            except BaseException as exc:  # noqa: BLE001 (contained: becomes the exit reason)
                reason = ExitReason.from_exception(exc, "on_start")
                self._started.set_exception(ActorCrashed(f"{self} failed to start: {reason}"))
                self._log_failure(reason)
                self._call_on_failure(exc)
                return
            self._started.set(True)
            reason = self._run_inbox()
        except BaseException as exc:  # noqa: BLE001 (a kill outside a handler, or a loop bug)
            reason = ExitReason.from_exception(exc)
        finally:
            self._finish(reason)

    def _run_inbox(self) -> ExitReason:
        inbox = self.actor_inbox
        stop_type = pykka_messages._ActorStop
        while True:
            envelope = inbox.get()
            message = envelope.message
            reply_to = envelope.reply_to
            if type(message) is stop_type:
                # Answered by _finish, once the actor's greenlets are gone: whoever stopped the
                # actor finds nothing of it running when ``stop()`` returns.
                self._stop_reply = reply_to
                try:
                    self.on_stop()
                except Exception as exc:  # noqa: BLE001 (contained: becomes the exit reason)
                    reason = ExitReason.from_exception(exc, "on_stop")
                    self._log_failure(reason)
                    return reason
                return NORMAL
            self._reply_to = reply_to
            try:
                response = self._handle_receive(message)
            except Exception as exc:  # noqa: BLE001 (contained: becomes the exit reason)
                if reply_to is not None:
                    # Like pykka: an ask's failure belongs to the asker; the actor lives on.
                    self._reply_to = None
                    reply_to.set_exception()
                    continue
                reason = ExitReason.from_exception(exc, f"handling {type(message).__name__}")
                self._log_failure(reason)
                self._call_on_failure(exc)
                return reason
            except BaseException as exc:  # noqa: BLE001 (contained: becomes the exit reason)
                # GreenletExit, KeyboardInterrupt, gevent.Timeout...: this actor dies, alone.
                reason = ExitReason.from_exception(exc, f"handling {type(message).__name__}")
                if reply_to is not None and not _future_done(reply_to):
                    reply_to.set_exception((ActorDeadError, ActorDeadError(f"{self} died: {reason}"), None))
                if reason.kind != "killed":
                    self._log_failure(reason)
                return reason
            if self._reply_to is not None:
                self._reply_to = None
                reply_to.set(response)  # type: ignore[union-attr]

    def _on_greenlet_dead(self, _greenlet: Greenlet) -> None:
        if not self._finished:
            self._finish(KILLED)

    def _finish(self, reason: ExitReason) -> None:
        if self._finished:
            return
        self._finished = True
        ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        if not self._started.ready():
            self._started.set_exception(ActorCrashed(f"{self} exited before starting: {reason}"))
        try:
            self.on_exit(reason)
        except Exception:
            logger.exception("on_exit of %s failed", self)
        if self._group is not None:
            self._end_group()
        # After the group: a job may have asked or told while it was being ended.
        self._fail_pending(reason)
        stop_reply, self._stop_reply = self._stop_reply, None
        if stop_reply is not None and not _future_done(stop_reply):
            stop_reply.set(None)
        self._exited.set(reason)
        monitors, self._monitors = self._monitors, {}
        for callback in monitors.values():
            try:
                callback(self.actor_ref, reason)
            except Exception:
                logger.exception("monitor callback for %s failed", self)

    def _fail_pending(self, reason: ExitReason) -> None:
        inbox = self.actor_inbox
        while not inbox.empty():
            envelope = inbox.get()
            reply_to = envelope.reply_to
            if reply_to is None or _future_done(reply_to):
                continue
            if isinstance(envelope.message, pykka_messages._ActorStop):
                reply_to.set(None)
            else:
                error = ActorDeadError(f"{self} stopped before handling the message ({reason})")
                reply_to.set_exception((ActorDeadError, error, None))

    def _log_failure(self, reason: ExitReason) -> None:
        # exc_info, not a pre-formatted traceback: formatting costs ~150 µs per crash even when
        # nobody logs it, which is most of a supervised restart.
        logger.error("actor %s crashed: %s", self, reason, exc_info=reason.exception)

    def _call_on_failure(self, exc: BaseException) -> None:
        try:
            self.on_failure(type(exc), exc, exc.__traceback__)
        except Exception:
            logger.exception("on_failure of %s failed", self)

    # -- hooks and helpers for subclasses ------------------------------------------------------

    def on_exit(self, reason: ExitReason) -> None:
        """Run after the loop ended for any reason (also when killed), before its greenlets are killed.

        It runs on the actor's own greenlet, where it may wait briefly (bounded), except when the
        greenlet was killed before its loop ever ran: then on the hub, where it must not block.
        """

    def defer_reply(self) -> pykka.Future[Any] | None:
        """Take over the reply of the message being handled; the loop will not answer it.

        Used by actors that answer later (group commit, a spawned greenlet). Returns ``None``
        when the current message was a ``tell``.
        """
        reply, self._reply_to = self._reply_to, None
        return reply

    def answer_later(self, func: Callable[..., Any], *args: Any) -> gevent.Greenlet:
        """Run ``func(*args)`` on its own greenlet and answer the current message with its result.

        For handlers whose work blocks (hashing, a package's hook): the actor keeps handling
        messages meanwhile. Whatever ``func`` raises goes to the asker.
        """
        reply = self.defer_reply()

        def run() -> None:
            try:
                result = func(*args)
            except GreenletExit:
                raise  # the actor exited: answered below, so the asker's greenlet lives on
            except BaseException as exc:  # noqa: BLE001 (handed to the asker, whatever it is)
                if reply is not None:
                    reply.set_exception((type(exc), exc, exc.__traceback__))
                return
            if reply is not None:
                reply.set(result)

        greenlet = self.spawn(run)
        if reply is not None:
            self.answer_if_dropped(greenlet, reply, ActorDeadError(f"{self} exited before it answered"))
        return greenlet

    def answer_if_dropped(self, greenlet: Greenlet, reply: pykka.Future[Any], error: Exception) -> None:
        """Fail ``reply`` with ``error`` if ``greenlet`` ends without answering it.

        For a job that answers a deferred reply: killed with its actor (even before it first
        ran), it would leave the asker waiting until its timeout.
        """

        def dropped(_greenlet: Greenlet) -> None:
            if not _future_done(reply):
                reply.set_exception((type(error), error, None))

        if not greenlet.started:  # spawned by an actor that had already exited
            dropped(greenlet)
            return
        greenlet.rawlink(dropped)

    def spawn(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Greenlet:
        """Run ``func`` on a greenlet owned by this actor: it is killed when the actor exits.

        Every greenlet an actor starts (jobs, timers, readers) goes through here, so stopping or
        killing the actor never leaves one of its greenlets running. A job reports back to its
        actor with a message (``self.actor_ref.tell(...)``); only handlers change actor state.
        """
        greenlet = Greenlet(func, *args, **kwargs)
        if self._finished:
            return greenlet  # never started: an exited actor starts nothing
        group = self._group
        if group is None:
            group = self._group = Group()
            _SPAWNERS.add(self)
        group.start(greenlet)
        return greenlet

    def spawn_later(self, seconds: float, func: Callable[..., Any], *args: Any) -> Greenlet:
        """Like :meth:`spawn`, but ``func`` runs after ``seconds`` (a timer the actor owns)."""

        def later() -> None:
            gevent.sleep(seconds)
            func(*args)

        later.__qualname__ = f"{getattr(func, '__qualname__', func)!s} (after {seconds:g} s)"
        return self.spawn(later)

    @property
    def greenlets(self) -> list[Greenlet]:
        """The greenlets this actor started that are still running."""
        if self._group is None:
            return []
        return [g for g in self._group.greenlets if not g.dead]

    def _end_group(self) -> None:
        """Kill every greenlet of the actor; on its own loop, wait (bounded) until they are dead."""
        assert self._group is not None
        current = gevent.getcurrent()
        others = [g for g in list(self._group.greenlets) if g is not current and not g.dead]
        if not others:
            return
        for greenlet in others:
            greenlet.kill(block=False)
        if current is not self._greenlet:
            return  # finishing from a link callback or a job of ours: nothing here may block
        try:
            gevent.joinall(others, timeout=END_GROUP_TIMEOUT)
        except BaseException:  # noqa: BLE001 (killed while waiting: the loop ends anyway; finish it)
            logger.warning("%s was killed while ending its greenlets", self)
            return
        stuck = [g for g in others if not g.dead]
        if stuck:
            logger.error(
                "%s: %d greenlet(s) did not end within %g s of the actor's exit: %s",
                self,
                len(stuck),
                END_GROUP_TIMEOUT,
                ", ".join(describe_greenlet(g) for g in stuck),
            )


END_GROUP_TIMEOUT = 5.0  # seconds an exiting actor waits for its killed greenlets
_SPAWNERS: weakref.WeakSet[GeventActor] = weakref.WeakSet()  # every actor that ever spawned a greenlet


def running_greenlets() -> list[tuple[GeventActor, Greenlet]]:
    """Every greenlet an actor spawned that still runs, with its actor (live or exited).

    A live greenlet keeps its actor reachable, so the weak set misses none of them. After a
    tree stopped, anything here is a leak (``Tree.stop`` reports it).
    """
    return [(actor, greenlet) for actor in list(_SPAWNERS) for greenlet in actor.greenlets]


def describe_greenlet(greenlet: Greenlet) -> str:
    """The function a greenlet runs (its qualified name), for a log line."""
    run = getattr(greenlet, "_run", None)
    return str(getattr(run, "__qualname__", None) or repr(greenlet))


def _future_done(future: pykka.Future[Any]) -> bool:
    return isinstance(future, GeventFuture) and future.ready()


NOPROC = ExitReason("noproc", "actor no longer exists")


def _actor_of(ref: ActorRef[Any]) -> GeventActor | None:
    """The actor behind a ref, or ``None`` once it has exited and been collected."""
    actor = ref._actor_weakref()
    if actor is None:
        return None
    if not isinstance(actor, GeventActor):
        raise TypeError(f"{ref} is not a GeventActor")
    return actor


def _result(ref: ActorRef[Any], name: str) -> AsyncResult:
    result = getattr(ref, name, None)
    if result is None:
        raise TypeError(f"{ref} is not a GeventActor")
    return result


def monitor(ref: ActorRef[Any], callback: Monitor) -> int:
    """Call ``callback(ref, reason)`` once when the actor exits; at once (soon) if already dead.

    Returns a handle for :func:`demonitor`.
    """
    actor = _actor_of(ref)
    if actor is None or actor._finished:
        exited = _result(ref, "_startos_exited")
        reason = exited.get() if exited.ready() else NOPROC
        gevent.get_hub().loop.run_callback(callback, ref, reason)
        return 0
    actor._monitor_seq += 1
    actor._monitors[actor._monitor_seq] = callback
    return actor._monitor_seq


def demonitor(ref: ActorRef[Any], handle: int) -> None:
    """Cancel a monitor; nothing happens if it already fired."""
    actor = _actor_of(ref)
    if actor is not None:
        actor._monitors.pop(handle, None)


def kill(ref: ActorRef[Any], *, block: bool = True, timeout: float | None = None) -> None:
    """Brutal kill: raise ``GreenletExit`` in the actor's greenlet. Its reason becomes ``killed``."""
    actor = _actor_of(ref)
    if actor is not None and actor._greenlet is not None and not actor._finished:
        actor._greenlet.kill(block=block, timeout=timeout)
        if block and actor._greenlet.dead:
            # A greenlet killed before it first ran reports through its link only later.
            actor._finish(KILLED)


def wait_started(ref: ActorRef[Any], timeout: float | None = None) -> None:
    """Block until ``on_start`` has finished; raise ``ActorCrashed`` if it failed."""
    _result(ref, "_startos_started").get(timeout=timeout)


def wait_exited(ref: ActorRef[Any], timeout: float | None = None) -> ExitReason | None:
    """Block until the actor has exited; return its reason, or ``None`` on timeout."""
    result = _result(ref, "_startos_exited")
    if result.wait(timeout=timeout) is None and not result.ready():
        return None
    reason: ExitReason = result.get()
    return reason


def exit_reason(ref: ActorRef[Any]) -> ExitReason | None:
    """The actor's exit reason, or ``None`` while it lives."""
    result = _result(ref, "_startos_exited")
    return result.get() if result.ready() else None


def handles(*message_types: type) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Mark an ``Actor`` method as the handler of the given message types."""

    def mark(func: Callable[..., T]) -> Callable[..., T]:
        func._handles = message_types  # type: ignore[attr-defined]
        return func

    return mark


class Actor(GeventActor):
    """A ``GeventActor`` that routes each message to the ``@handles`` method for its type."""

    _handlers: ClassVar[dict[type, Callable[[Any, Any], Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type, Callable[[Any, Any], Any]] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                for message_type in getattr(value, "_handles", ()):
                    table[message_type] = value
        cls._handlers = table

    def on_receive(self, message: Any) -> Any:
        handler = self._handlers.get(type(message))
        if handler is None:
            raise UnknownMessage(f"{type(self).__name__} does not handle {type(message).__name__}")
        return handler(self, message)

    @classmethod
    def handled_messages(cls) -> list[type]:
        """Every message type this actor answers."""
        return list(cls._handlers)
