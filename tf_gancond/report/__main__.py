"""python -m tf_gancond.report: see tf_gancond/report/__init__.py."""

from tf_gancond.report import run

if __name__ == '__main__':
  run()
