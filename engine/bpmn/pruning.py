"""Keeping a looping workflow's task tree bounded.

SpiffWorkflow appends every loop iteration below the previous one, so the tree's depth grows
with the iteration count. Every engine step walks the tree, the parallel join compares each
branch with every earlier join (quadratic), and past depth 1000 the library's iterators stop
early: `is_completed()` turns true while a task is still READY, and the join recurses out of
stack. See shared/notes/spiffworkflow-3.2-loops.md.

The cut: when a task T becomes live and its nearest ancestor A runs the same element (the token
came back round a loop), everything from A down to T's parent is finished history. If every
task in A's subtree outside T's own subtree is finished, T is re-linked where A was (under A's
parent) and A's subtree is dropped: the tree looks like the first visit again. History is not
lost — every step already appended its completed elements to the instance's event log.

The cut is refused (nothing changes) when anything in the region is still live, e.g. a parallel
branch of the previous iteration that has not reached its join: removing it would change what
the process does.
"""
from __future__ import annotations

from SpiffWorkflow.util.task import TaskState

FINISHED = TaskState.COMPLETED | TaskState.CANCELLED

# Past this depth SpiffWorkflow's iterators (max_depth=1000) start to give wrong answers.
UNSAFE_DEPTH = 900


def _region_if_finished(ancestor, reentry) -> list | None:
    """All tasks of `ancestor`'s subtree outside `reentry`'s subtree, or None if any is unfinished."""
    region = []
    stack = [ancestor]
    while stack:
        task = stack.pop()
        if task is reentry:
            continue
        if not task._state & FINISHED:
            return None
        region.append(task)
        stack.extend(task.children)
    return region


def cut_loop_history(task) -> list:
    """Drop the finished history between `task` and its previous visit; returns the removed tasks."""
    workflow = task.workflow
    ancestor = task.find_ancestor(task.task_spec.name)
    if ancestor is None or ancestor.parent is None:
        return []
    region = _region_if_finished(ancestor, task)
    if region is None:
        return []
    anchor = ancestor.parent
    top = workflow.top_workflow

    old_parent = task.parent
    old_parent._children.remove(task.id)
    anchor._children[anchor._children.index(ancestor.id)] = task.id
    task._parent = anchor.id

    removed = []
    for dropped in region:
        if dropped.id in top.subprocesses:
            removed.extend(top.delete_subprocess(dropped))
        workflow.tasks.pop(dropped.id, None)
        removed.append(dropped)
    if workflow.last_task is not None and workflow.last_task.id not in workflow.tasks:
        workflow.last_task = anchor
    return removed


def depth(task) -> int:
    count = 0
    parent_id = task._parent
    tasks = task.workflow.tasks
    while parent_id is not None:
        count += 1
        parent_id = tasks[parent_id]._parent
    return count
