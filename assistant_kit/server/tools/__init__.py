"""server/tools"""
