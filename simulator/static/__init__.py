"""Static files of the simulated portal and login pages (plain JavaScript, served locally).

A data package only: nothing here is imported at run time.
"""
