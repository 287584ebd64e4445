"""Run many short Jobs while the GUI thread keeps Qt connecting objects (labels' setText); print "done N".

Run by test_ui_threads in its own process, under a time limit: before the fix
in ui/workers.Job, Qt deleted each worker in its own thread and this hung
in 3 of 4 runs of 3,000 jobs (the GIL and Qt's connection lock taken in opposite
orders by the two threads).
"""

from __future__ import annotations

import sys

from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtWidgets import QApplication, QLabel

from ui.workers import Job, Worker


class Sum(Worker):
    def work(self) -> int:
        return sum(range(100))


def main(total: int) -> None:
    app = QApplication(sys.argv[:1])
    labels = [QLabel() for _ in range(20)]
    jobs: list[Job] = []
    results: list[int] = []
    finished = [0]

    def launch() -> None:
        worker = Sum()
        worker.result_ready.connect(results.append)
        job = Job(worker, "churn")
        job.thread.finished.connect(on_finished)
        jobs.append(job)
        job.start()

    def on_finished() -> None:
        finished[0] += 1
        if finished[0] >= total:
            app.quit()
        elif finished[0] + 3 < total:
            launch()

    def churn() -> None:
        for n in range(50):
            label = labels[n % len(labels)]
            label.setTextInteractionFlags(Qt.NoTextInteraction)
            label.setTextInteractionFlags(Qt.TextSelectableByMouse)  # setText then connects a text control
            label.setText(str(n))

    timer = QTimer()
    timer.timeout.connect(churn)
    timer.start(10)  # busy about half the time: a busier timer starves the queued "finished" signals
    for _ in range(4):
        launch()
    app.exec_()
    app.processEvents()
    print("done", finished[0], "results", len(results))


if __name__ == "__main__":
    main(int(sys.argv[1]))
